import { describe, expect, it } from "vitest";
import { backoffDelay } from "./backoff";
import { docCloseAction, eventsCloseAction } from "./closeCodes";
import { languageFor } from "./language";
import { applyPresence, missingProfiles, peopleHere, type PresenceEntry, type Profile } from "./presence";
import { connectionText } from "./status";

describe("backoffDelay", () => {
  it("grows exponentially, stays within half and all of the step, and is capped", () => {
    const low = () => 0;
    const high = () => 1;
    expect(backoffDelay(0, { base: 400, cap: 10_000 }, low)).toBe(200);
    expect(backoffDelay(0, { base: 400, cap: 10_000 }, high)).toBe(400);
    expect(backoffDelay(3, { base: 400, cap: 10_000 }, high)).toBe(3200);
    expect(backoffDelay(20, { base: 400, cap: 10_000 }, high)).toBe(10_000);
    expect(backoffDelay(1000, { base: 400, cap: 10_000 }, low)).toBe(5000);
  });
});

describe("close codes", () => {
  it("maps the document socket's codes as api.md says", () => {
    expect(docCloseAction(4401)).toBe("refresh-token");
    expect(docCloseAction(4429)).toBe("wait");
    expect(docCloseAction(4403)).toBe("removed");
    expect(docCloseAction(4410)).toBe("deleted");
    expect(docCloseAction(1013)).toBe("provider");
    expect(docCloseAction(1012)).toBe("provider");
    expect(docCloseAction(4499)).toBe("wait");
  });

  it("tells an ended session's close from a deleted one's on the events socket", () => {
    expect(eventsCloseAction(4410, { ended: true, deleted: false })).toBe("ended");
    expect(eventsCloseAction(4410, { ended: false, deleted: false })).toBe("check");
    expect(eventsCloseAction(4410, { ended: true, deleted: true })).toBe("check");
    expect(eventsCloseAction(4403, { ended: false, deleted: false })).toBe("removed");
    expect(eventsCloseAction(4401, { ended: false, deleted: false })).toBe("refresh-token");
    expect(eventsCloseAction(1012, { ended: false, deleted: false })).toBe("retry");
    expect(eventsCloseAction(1006, { ended: false, deleted: false })).toBe("retry");
  });
});

describe("connectionText", () => {
  const base = { online: true, eventsUp: true, docUp: true, downSince: null, now: 100_000 };
  it("is Connected only when both sockets are up", () => {
    expect(connectionText(base)).toBe("Connected");
    expect(connectionText({ ...base, docUp: false, downSince: 99_000 })).toBe("Reconnecting…");
    expect(connectionText({ ...base, eventsUp: false, downSince: 99_000 })).toBe("Reconnecting…");
  });
  it("is Offline when the browser is, or after 30 s of failing", () => {
    expect(connectionText({ ...base, online: false })).toBe("Offline");
    expect(connectionText({ ...base, docUp: false, downSince: 100_000 - 30_000 })).toBe("Offline");
    expect(connectionText({ ...base, docUp: false, downSince: 100_000 - 29_000 })).toBe("Reconnecting…");
  });
});

describe("languageFor", () => {
  it("maps API names onto language-data's", () => {
    expect(languageFor("python")?.name).toBe("Python");
    expect(languageFor("c++")?.name).toBe("C++");
    expect(languageFor("c#")?.name).toBe("C#");
    expect(languageFor("shell")?.name).toBe("Shell");
    expect(languageFor("typescript")?.name).toBe("TypeScript");
    expect(languageFor("Go")?.name).toBe("Go");
    expect(languageFor("yaml")?.name).toBe("YAML");
  });
  it("answers null for plain text and unknown names", () => {
    expect(languageFor("plaintext")).toBeNull();
    expect(languageFor("")).toBeNull();
    expect(languageFor("klingon")).toBeNull();
  });
});

describe("presence", () => {
  const me: Profile = { id: "u1", github_login: "octocat", avatar_url: "a1" };
  const hubot: Profile = { id: "u2", github_login: "hubot", avatar_url: "a2" };
  const profiles = new Map([[me.id, me], [hubot.id, hubot]]);
  const entry = (connection: string, user: string): PresenceEntry => ({ connection_id: connection, user_id: user });

  it("lists each person once, however many connections, yourself first", () => {
    const people = peopleHere([entry("c1", "u2"), entry("c2", "u2"), entry("c3", "u1")], profiles, me);
    expect(people.map((p) => [p.login, p.connections, p.me])).toEqual([["octocat", 1, true], ["hubot", 2, false]]);
  });

  it("includes yourself before your own connection is listed", () => {
    expect(peopleHere([], profiles, me).map((p) => p.login)).toEqual(["octocat"]);
  });

  it("applies joins and leaves by connection", () => {
    let map = applyPresence(new Map(), "presence.joined", entry("c1", "u2"));
    map = applyPresence(map, "presence.joined", entry("c2", "u2"));
    map = applyPresence(map, "presence.left", entry("c1", "u2"));
    expect([...map.keys()]).toEqual(["c2"]);
    expect(peopleHere(map.values(), profiles, me).map((p) => p.login)).toEqual(["octocat", "hubot"]);
    map = applyPresence(map, "presence.left", entry("c2", "u2"));
    expect(peopleHere(map.values(), profiles, me).map((p) => p.login)).toEqual(["octocat"]);
  });

  it("notices someone present without a profile", () => {
    expect(missingProfiles([entry("c1", "u3")], profiles)).toBe(true);
    expect(missingProfiles([entry("c1", "u2")], profiles)).toBe(false);
  });
});
