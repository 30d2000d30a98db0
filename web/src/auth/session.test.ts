import { describe, expect, it } from "vitest";
import { mayBeSignedIn, REFRESH_AHEAD_MS, refreshDelay, retryDelay } from "./session";

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

describe("mayBeSignedIn", () => {
  it("reads the gateway's flag among other cookies", () => {
    expect(mayBeSignedIn("a=b; tandem_signed_in=1; c=d")).toBe(true);
    expect(mayBeSignedIn("tandem_signed_in=1")).toBe(true);
  });

  it("is false without it, or when it was cleared", () => {
    expect(mayBeSignedIn("")).toBe(false);
    expect(mayBeSignedIn("tandem_signed_in=")).toBe(false);
    expect(mayBeSignedIn("x_tandem_signed_in=1")).toBe(false);
  });
});

describe("retryDelay", () => {
  it("backs off from a second to at most fifteen", () => {
    expect([1, 2, 3, 4, 5, 6, 20].map(retryDelay)).toEqual([1_000, 2_000, 4_000, 8_000, 15_000, 15_000, 15_000]);
  });
});
