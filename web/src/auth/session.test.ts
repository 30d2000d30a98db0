import { describe, expect, it } from "vitest";
import { REFRESH_AHEAD_MS, refreshDelay } from "./session";

describe("refreshDelay", () => {
  it("refreshes a minute before a 15-minute token expires", () => {
    expect(refreshDelay(900)).toBe(900_000 - REFRESH_AHEAD_MS);
  });

  it("refreshes short tokens at 80% of their life", () => {
    expect(refreshDelay(60)).toBe(48_000);
  });

  it("never spins faster than every 5 seconds", () => {
    expect(refreshDelay(1)).toBe(5_000);
  });
});
