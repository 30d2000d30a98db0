import { beforeEach, describe, expect, it } from "vitest";
import { forgetViewed, setViewed, viewedKey, viewedPaths } from "./viewed";

describe("viewed marks", () => {
  beforeEach(() => { localStorage.clear(); forgetViewed(); });

  it("are kept per person, review and head, in localStorage", () => {
    setViewed("u1", "r1", "sha1", "a.py", true);
    setViewed("u1", "r1", "sha1", "b.py", true);
    setViewed("u1", "r1", "sha1", "b.py", false);
    expect([...viewedPaths("u1", "r1", "sha1")]).toEqual(["a.py"]);
    expect(viewedPaths("u2", "r1", "sha1").size).toBe(0);
    expect(viewedPaths("u1", "r1", "sha2").size).toBe(0);
    forgetViewed();
    expect(JSON.parse(localStorage.getItem(viewedKey("u1", "r1")) ?? "null")).toEqual({ head: "sha1", paths: ["a.py"] });
    expect([...viewedPaths("u1", "r1", "sha1")]).toEqual(["a.py"]);
  });

  it("start over at a new head, and ignore what they cannot read", () => {
    setViewed("u1", "r1", "sha1", "a.py", true);
    setViewed("u1", "r1", "sha2", "c.py", true);
    expect([...viewedPaths("u1", "r1", "sha2")]).toEqual(["c.py"]);
    localStorage.setItem(viewedKey("u1", "r9"), "{not json");
    forgetViewed();
    expect(viewedPaths("u1", "r9", "x").size).toBe(0);
  });
});
