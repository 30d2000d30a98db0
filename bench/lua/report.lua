-- Appended to every wrk script the benchmark runs: counts non-2xx answers wrk itself does not
-- (it only counts status >= 400) and prints one machine-readable line when the run is done,
-- so nothing depends on the layout of wrk's human-readable report.

local threads = {}
local scenario_response = response

setup = function(thread)
  table.insert(threads, thread)
  -- 0, 1, ...: a scenario script's init() can read it to give each thread its own share.
  thread:set("thread_index", #threads - 1)
end

-- Per-thread global: each wrk thread runs its own Lua state; done() reads it via thread:get.
other_status = 0

response = function(status, headers, body)
  if status < 200 or (status >= 300 and status < 400) then
    other_status = other_status + 1
  end
  if scenario_response then
    scenario_response(status, headers, body)
  end
end

done = function(summary, latency, requests)
  local other = 0
  for _, thread in ipairs(threads) do
    other = other + (thread:get("other_status") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_REPORT {"requests":%d,"duration_us":%d,"bytes":%d,"p50_us":%d,"p90_us":%d,'
      .. '"p99_us":%d,"max_us":%d,"mean_us":%.1f,"connect":%d,"read":%d,"write":%d,'
      .. '"timeout":%d,"status":%d,"other_status":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean, e.connect, e.read, e.write, e.timeout, e.status, other))
end
