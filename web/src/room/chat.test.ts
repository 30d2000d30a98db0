import { describe, expect, it } from "vitest";
import { ChatLog, type StoredMessage } from "./chat";

const me = { id: "u1", github_login: "octocat" };
const other = { id: "u2", github_login: "hubot" };

function stored(seq: number, body: string, extra: Partial<StoredMessage> = {}): StoredMessage {
  return { id: `m${seq}`, seq, author: other, body, created_at: "2025-01-01T00:00:00Z", ...extra };
}

describe("ChatLog", () => {
  it("orders by seq and dedupes history and live copies of one message", () => {
    const log = new ChatLog();
    expect(log.add([stored(3, "c")])).toBe(true);
    expect(log.add([stored(1, "a"), stored(2, "b"), stored(3, "c")])).toBe(true);
    expect(log.add([stored(2, "b")])).toBe(false);
    expect(log.entries().map((e) => e.message.body)).toEqual(["a", "b", "c"]);
    expect(log.lowestSeq()).toBe(1);
  });

  it("shows a sent message as pending until its ack, then once", () => {
    const log = new ChatLog();
    log.queue("hello", me, "c-1");
    expect(log.entries().map((e) => e.kind)).toEqual(["pending"]);
    log.ack("c-1", 7, "m7");
    expect(log.entries().map((e) => [e.kind, e.message.body])).toEqual([["sent", "hello"]]);
    // The message itself arrives after its ack: still one.
    log.add([stored(7, "hello", { author: me, client_id: "c-1" })]);
    expect(log.entries()).toHaveLength(1);
    expect(log.unacknowledged()).toEqual([]);
  });

  it("keeps one entry when the message arrives before its ack", () => {
    const log = new ChatLog();
    log.queue("hi", me, "c-2");
    log.add([stored(4, "hi", { author: me, client_id: "c-2" })]);
    log.ack("c-2", 4, "m4");
    expect(log.entries().map((e) => e.kind)).toEqual(["sent"]);
  });

  it("resends unacknowledged messages with the same client_id; a refused one waits for the person", () => {
    const log = new ChatLog();
    log.queue("one", me, "c-1");
    log.queue("two", me, "c-2");
    log.queue("three", me, "c-3");
    log.fail("c-2", "rate_limited", "too many messages; slow down");
    log.fail("c-3", "invalid_argument", "body is too long");
    expect(log.unacknowledged().map((m) => m.clientId)).toEqual(["c-1", "c-2"]);
    const entry = log.entries().find((e) => e.key === "c-3");
    expect(entry?.kind === "pending" ? entry.message.error : null).toBe("body is too long");
    log.retry("c-3");
    expect(log.unacknowledged().map((m) => m.clientId)).toEqual(["c-1", "c-2", "c-3"]);
    log.discard("c-1");
    expect(log.unacknowledged().map((m) => m.clientId)).toEqual(["c-2", "c-3"]);
  });

  it("lists pending messages after stored ones and keeps keys stable across the ack", () => {
    const log = new ChatLog();
    log.add([stored(1, "a")]);
    log.queue("mine", me, "c-9");
    log.add([stored(2, "b")]);
    expect(log.entries().map((e) => e.key)).toEqual(["m1", "m2", "c-9"]);
    log.ack("c-9", 3, "m3");
    expect(log.entries().map((e) => e.key)).toEqual(["m1", "m2", "c-9"]);
  });
});
