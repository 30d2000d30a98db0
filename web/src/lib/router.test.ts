import { describe, expect, it } from "vitest";
import { match } from "./router";

describe("match", () => {
  it("knows the app's four routes", () => {
    expect(match("/")).toEqual({ name: "home" });
    expect(match("/auth/callback")).toEqual({ name: "callback" });
    expect(match("/sessions/7b0c")).toEqual({ name: "room", sessionId: "7b0c" });
    expect(match("/sessions/7b0c/")).toEqual({ name: "room", sessionId: "7b0c" });
    expect(match("/invitations/tok%2Fen")).toEqual({ name: "invitation", token: "tok/en" });
  });

  it("answers not-found for anything else", () => {
    expect(match("/sessions")).toEqual({ name: "not-found" });
    expect(match("/sessions/a/b")).toEqual({ name: "not-found" });
    expect(match("/settings")).toEqual({ name: "not-found" });
  });
});
