import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { EventsSocket, type ChatFrame, type CloseDecision, type ServerEvent } from "./events";

class FakeSocket {
  static readonly CONNECTING = 0;
  static readonly OPEN = 1;
  static readonly CLOSING = 2;
  static readonly CLOSED = 3;
  static all: FakeSocket[] = [];
  readonly OPEN = 1;
  readyState = 0;
  sent: Record<string, unknown>[] = [];
  onopen: (() => void) | null = null;
  onmessage: ((event: { data: string }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: (() => void) | null = null;
  constructor(readonly url: string) {
    FakeSocket.all.push(this);
  }
  send(data: string) {
    this.sent.push(JSON.parse(data) as Record<string, unknown>);
  }
  close() {
    this.readyState = 3;
  }
  open() {
    this.readyState = 1;
    this.onopen?.();
  }
  receive(event: ServerEvent) {
    this.onmessage?.({ data: JSON.stringify(event) });
  }
  drop(code: number) {
    this.readyState = 3;
    this.onclose?.({ code, reason: "" });
  }
}

function last(): FakeSocket {
  const socket = FakeSocket.all[FakeSocket.all.length - 1];
  if (socket === undefined) throw new Error("no socket");
  return socket;
}

describe("EventsSocket", () => {
  let events: ServerEvent[];
  let outbox: ChatFrame[];
  let decision: CloseDecision;
  let tokens: boolean[];

  function make(): EventsSocket {
    return new EventsSocket({
      url: "ws://host/api/v1/sessions/s/events",
      getToken: (fresh) => { tokens.push(fresh); return Promise.resolve(fresh ? "fresh" : "t1"); },
      onEvent: (e) => events.push(e),
      onPhase: () => undefined,
      onClose: () => decision,
      outbox: () => outbox,
      WebSocketImpl: FakeSocket as unknown as typeof WebSocket,
      random: () => 0,
    });
  }

  beforeEach(() => {
    vi.useFakeTimers();
    FakeSocket.all = [];
    events = [];
    outbox = [];
    decision = "retry";
    tokens = [];
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("starts from the welcome's last_seq, then says hello with the highest seq seen on reconnect", async () => {
    const socket = make();
    socket.start();
    await vi.runOnlyPendingTimersAsync();
    const first = last();
    expect(first.url).toBe("ws://host/api/v1/sessions/s/events?access_token=t1");
    first.open();
    expect(first.sent).toEqual([]); // nothing known yet: no hello before the welcome
    first.receive({ type: "welcome", last_seq: 10 });
    expect(first.sent).toEqual([{ type: "hello", last_seq: 10 }]);
    first.receive({ type: "chat.message", seq: 11 });
    first.receive({ type: "chat.ack", seq: 40, client_id: "c" }); // an ack does not move it
    first.receive({ type: "member.role_changed", seq: 12 });
    first.receive({ type: "presence.joined" });
    expect(socket.lastSeq).toBe(12);

    outbox = [{ body: "still pending", client_id: "c-1" }];
    first.drop(1012);
    await vi.advanceTimersByTimeAsync(1000);
    const second = last();
    expect(second).not.toBe(first);
    second.open();
    expect(second.sent).toEqual([
      { type: "hello", last_seq: 12 },
      { type: "chat.send", body: "still pending", client_id: "c-1" },
    ]);
    second.receive({ type: "welcome", last_seq: 15 });
    expect(socket.lastSeq).toBe(12); // the replay raises it, not the welcome
    expect(events.map((e) => e.type)).toContain("member.role_changed");
    socket.stop();
  });

  it("backs off with growing delays while the server is away", async () => {
    const socket = make();
    socket.start();
    await vi.runOnlyPendingTimersAsync();
    last().drop(1006);
    await vi.advanceTimersByTimeAsync(199);
    expect(FakeSocket.all).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(2);
    expect(FakeSocket.all).toHaveLength(2);
    last().drop(1006);
    await vi.advanceTimersByTimeAsync(399);
    expect(FakeSocket.all).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(2);
    expect(FakeSocket.all).toHaveLength(3);
    socket.stop();
  });

  it("reconnects with a fresh token after 4401 and stops when told to", async () => {
    const socket = make();
    socket.start();
    await vi.runOnlyPendingTimersAsync();
    decision = "refresh-token";
    last().drop(4401);
    await vi.advanceTimersByTimeAsync(0);
    expect(tokens).toEqual([false, true]);
    expect(last().url).toContain("access_token=fresh");
    decision = "stop";
    last().drop(4403);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(FakeSocket.all).toHaveLength(2);
    expect(socket.phase).toBe("stopped");
  });

  it("sends a new token in-band, and answers token_expired with a fresh one", async () => {
    const socket = make();
    socket.start();
    await vi.runOnlyPendingTimersAsync();
    const ws = last();
    ws.open();
    socket.setToken("t2");
    expect(ws.sent).toEqual([{ type: "auth", access_token: "t2" }]);
    ws.receive({ type: "error", code: "token_expired", retry_after: 5 });
    await vi.advanceTimersByTimeAsync(0);
    expect(ws.sent[1]).toEqual({ type: "auth", access_token: "fresh" });
    socket.stop();
  });

  describe("while the token is slow to come", () => {
    let pending: ((token: string | null) => void)[];

    function slow(): EventsSocket {
      return new EventsSocket({
        url: "ws://host/api/v1/sessions/s/events",
        getToken: () => new Promise((resolve) => pending.push(resolve)),
        onEvent: (e) => events.push(e),
        onPhase: () => undefined,
        onClose: () => decision,
        outbox: () => outbox,
        WebSocketImpl: FakeSocket as unknown as typeof WebSocket,
        random: () => 0,
      });
    }

    beforeEach(() => {
      pending = [];
    });

    it("coming back online does not start a second connection", async () => {
      const socket = slow();
      socket.start();
      socket.retryNow(); // the browser's `online` event during the token refresh
      socket.retryNow();
      for (const resolve of pending) resolve("t1");
      await vi.advanceTimersByTimeAsync(0);
      expect(FakeSocket.all).toHaveLength(1);
      socket.stop();
      expect(FakeSocket.all.every((ws) => ws.readyState === 3)).toBe(true);
    });

    it("a retry during the backoff's own token wait connects once", async () => {
      const socket = slow();
      socket.start();
      pending.shift()?.("t1");
      await vi.advanceTimersByTimeAsync(0);
      last().drop(1006);
      await vi.advanceTimersByTimeAsync(1000); // the scheduled retry asks for a token
      expect(pending).toHaveLength(1);
      socket.retryNow();
      for (const resolve of pending.splice(0)) resolve("t1");
      await vi.advanceTimersByTimeAsync(0);
      expect(FakeSocket.all).toHaveLength(2);
      expect(FakeSocket.all[0]?.readyState).toBe(3);
      socket.stop();
    });

    it("a token that arrives while connecting is sent in-band as soon as the socket opens", async () => {
      const socket = slow();
      socket.start();
      socket.setToken("t2"); // refreshed during the wait for the first token
      pending.shift()?.("t1");
      await vi.advanceTimersByTimeAsync(0);
      const first = last();
      expect(first.url).toContain("access_token=t1");
      socket.setToken("t3"); // and again while the socket is connecting
      expect(first.sent).toEqual([]);
      first.open();
      expect(first.sent).toEqual([{ type: "auth", access_token: "t3" }]);
      first.receive({ type: "welcome", last_seq: 3 });

      // A reconnect: hello before auth, so the replay is not overtaken by live events.
      first.drop(1006);
      await vi.advanceTimersByTimeAsync(1000);
      pending.shift()?.("t3");
      await vi.advanceTimersByTimeAsync(0);
      const second = last();
      socket.setToken("t4");
      second.open();
      expect(second.sent).toEqual([{ type: "hello", last_seq: 3 }, { type: "auth", access_token: "t4" }]);

      // Opened with the current token: nothing more to say.
      second.drop(1006);
      await vi.advanceTimersByTimeAsync(1000);
      pending.shift()?.("t4");
      await vi.advanceTimersByTimeAsync(0);
      last().open();
      expect(last().sent).toEqual([{ type: "hello", last_seq: 3 }]);
      socket.stop();
    });

    it("opens nothing after stop, however late the token arrives", async () => {
      const socket = slow();
      socket.start();
      socket.stop();
      socket.start(); // stopped and started again (a session check) before the first token
      for (const resolve of pending) resolve("t1");
      await vi.advanceTimersByTimeAsync(0);
      expect(FakeSocket.all).toHaveLength(1);
      socket.stop();
      for (const resolve of pending) resolve("t1");
      await vi.advanceTimersByTimeAsync(60_000);
      expect(FakeSocket.all).toHaveLength(1);
      expect(last().readyState).toBe(3);
      expect(socket.phase).toBe("stopped");
    });
  });

  it("treats a connection that stops answering pings as dropped", async () => {
    const socket = make();
    socket.start();
    await vi.runOnlyPendingTimersAsync();
    const ws = last();
    ws.open();
    await vi.advanceTimersByTimeAsync(20_000);
    expect(ws.sent).toEqual([{ type: "ping" }]);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(socket.phase).toBe("waiting");
    await vi.advanceTimersByTimeAsync(1000);
    expect(FakeSocket.all).toHaveLength(2);
    socket.stop();
  });
});
