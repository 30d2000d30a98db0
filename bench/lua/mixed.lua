-- The mixed scenario's request picker (bench/scenarios/mixed.py). Expects the generated globals
-- MIXED_USERS = {{token=..., member={session ids}, owned={session ids}}, ...},
-- MIXED_OPS = {{name=..., weight=...}, ...} and MIXED_SEEDED (messages stored per session).
-- Every request picks an operation by weight and a user at random; each wrk thread has its
-- own random sequence (seeded by thread_index, which report.lua's setup gives every thread).

local users = {}
local ops = {}
local total_weight = 0
local sent = 0

init = function(args)
  math.randomseed(7919 * ((thread_index or 0) + 1))
  for i, user in ipairs(MIXED_USERS) do
    local bearer = "Bearer " .. user.token
    users[i] = {
      member = user.member,
      owned = user.owned,
      read = {["Authorization"] = bearer},
      write = {["Authorization"] = bearer, ["Content-Type"] = "application/json"},
    }
  end
  for _, op in ipairs(MIXED_OPS) do
    total_weight = total_weight + op.weight
    table.insert(ops, {name = op.name, upto = total_weight})
  end
end

local function pick(list)
  return list[math.random(#list)]
end

local function choose()
  local r = math.random() * total_weight
  for _, op in ipairs(ops) do
    if r < op.upto then
      return op.name
    end
  end
  return ops[#ops].name
end

request = function()
  local user = pick(users)
  local op = choose()
  sent = sent + 1
  if op == "list" then
    return wrk.format("GET", "/api/v1/sessions?limit=20", user.read)
  elseif op == "get" then
    return wrk.format("GET", "/api/v1/sessions/" .. pick(user.member), user.read)
  elseif op == "messages" then
    local after = math.random(0, MIXED_SEEDED)
    return wrk.format("GET", "/api/v1/sessions/" .. pick(user.member) .. "/messages?after_seq="
      .. after .. "&limit=50", user.read)
  elseif op == "me" then
    return wrk.format("GET", "/api/v1/me", user.read)
  elseif op == "post" then
    local body = '{"body":"mixed load message ' .. (thread_index or 0) .. "-" .. sent .. '"}'
    return wrk.format("POST", "/api/v1/sessions/" .. pick(user.member) .. "/messages",
      user.write, body)
  else -- "rename": only an owner may change a session's title
    local body = '{"title":"Mixed load ' .. (thread_index or 0) .. "-" .. sent .. '"}'
    return wrk.format("PATCH", "/api/v1/sessions/" .. pick(user.owned), user.write, body)
  end
end
