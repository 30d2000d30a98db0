// The events socket (`/api/v1/sessions/{id}/events`): JSON frames, reconnected with capped
// exponential backoff and jitter; on every (re)connection it says `hello` with the highest
// sequence number seen, so the server replays what was missed, and resends the chat
// messages not yet acknowledged (the server dedupes them by client_id).
import { backoffDelay, EVENTS_BACKOFF } from "./backoff";

export interface ServerEvent {
  type: string;
  seq?: number;
  [field: string]: unknown;
}

export type EventsPhase = "connecting" | "open" | "waiting" | "stopped";
export type CloseDecision = "retry" | "refresh-token" | "stop";

export interface ChatFrame {
  body: string;
  client_id: string;
}

export interface EventsOptions {
  /** ws(s)://…/events, without the token. */
  url: string;
  /** The access token; `fresh` asks for a new one (the old one was refused). */
  getToken: (fresh: boolean) => Promise<string | null>;
  onEvent: (event: ServerEvent) => void;
  onPhase: (phase: EventsPhase) => void;
  /** A close the socket does not decide by itself. */
  onClose: (code: number, reason: string) => CloseDecision;
  /** Chat messages to (re)send once connected. */
  outbox: () => ChatFrame[];
  WebSocketImpl?: typeof WebSocket;
  random?: () => number;
  /** Keepalive: a ping after this long, and a dead connection after this long without an answer. */
  pingEvery?: number;
  pongWithin?: number;
}

/** Sequenced events that move the replay point (an ack's seq is its message's, which arrives
 * by itself in order; counting it early could skip events before it on a reconnect). */
function countsForReplay(event: ServerEvent): event is ServerEvent & { seq: number } {
  return typeof event.seq === "number" && event.type !== "chat.ack";
}

export class EventsSocket {
  /** The highest sequence number delivered on this socket (null before the first welcome). */
  lastSeq: number | null = null;
  phase: EventsPhase = "connecting";
  private ws: WebSocket | null = null;
  /** Counts connection attempts: an attempt still awaiting its token when a newer one starts
   * (or the socket is stopped) gives up, so there is never more than one connection. */
  private generation = 0;
  /** An attempt is awaiting its token (no `ws` yet). */
  private connecting = false;
  private attempt = 0;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private pingTimer: ReturnType<typeof setTimeout> | undefined;
  private pongTimer: ReturnType<typeof setTimeout> | undefined;
  private stopped = false;
  private token: string | null = null;
  private readonly WS: typeof WebSocket;

  constructor(private readonly options: EventsOptions) {
    this.WS = options.WebSocketImpl ?? WebSocket;
  }

  start(): void {
    this.stopped = false;
    void this.connect(false);
  }

  stop(): void {
    this.stopped = true;
    this.generation += 1;
    this.connecting = false;
    clearTimeout(this.retryTimer);
    this.clearKeepalive();
    const ws = this.ws;
    this.ws = null;
    if (ws !== null) {
      detach(ws);
      ws.close(1000, "leaving the room");
    }
    this.setPhase("stopped");
  }

  /** Connect now instead of waiting out the backoff (the browser came back online). */
  retryNow(): void {
    if (this.stopped || this.ws !== null || this.connecting) return;
    clearTimeout(this.retryTimer);
    this.attempt = 0;
    void this.connect(false);
  }

  get open(): boolean {
    return this.ws !== null && this.ws.readyState === this.WS.OPEN;
  }

  /** Sends a frame if connected; answers whether it went out. */
  send(frame: Record<string, unknown>): boolean {
    if (this.ws === null || this.ws.readyState !== this.WS.OPEN) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  sendChat(message: ChatFrame): boolean {
    return this.send({ type: "chat.send", body: message.body, client_id: message.client_id });
  }

  /** A new access token: the live connection gets it in-band (`auth`), one still connecting
   * as soon as it opens, later ones in the URL. */
  setToken(token: string): void {
    if (token === this.token) return;
    this.token = token;
    this.send({ type: "auth", access_token: token });
  }

  private setPhase(phase: EventsPhase): void {
    if (this.phase === phase) return;
    this.phase = phase;
    this.options.onPhase(phase);
  }

  private async connect(freshToken: boolean): Promise<void> {
    const generation = ++this.generation;
    clearTimeout(this.retryTimer);
    this.connecting = true;
    this.setPhase("connecting");
    const known = this.token;
    let token: string | null;
    try {
      token = await this.options.getToken(freshToken);
    } catch {
      token = null;
    }
    // Stopped meanwhile, or superseded by a newer attempt: that one connects, not this.
    if (this.stopped || generation !== this.generation) return;
    this.connecting = false;
    if (token === null) {
      // Signed out, or Tandem unreachable: the auth module says which; try again later.
      this.schedule();
      return;
    }
    // A token handed over by setToken during the wait is the newer one: keep it for `auth`.
    if (this.token === known) this.token = token;
    const stale = this.ws;
    if (stale !== null) {
      detach(stale);
      stale.close(1000, "replaced");
    }
    const ws = new this.WS(`${this.options.url}?access_token=${encodeURIComponent(token)}`);
    this.ws = ws;
    ws.onopen = () => {
      if (this.ws !== ws) return;
      // `hello` first: any other frame opens the server's gate for live events before the replay.
      if (this.lastSeq !== null) this.send({ type: "hello", last_seq: this.lastSeq });
      // A token that came while this socket was connecting could not be sent then.
      if (this.token !== null && this.token !== token) this.send({ type: "auth", access_token: this.token });
      for (const message of this.options.outbox()) this.sendChat(message);
      this.keepalive();
    };
    ws.onmessage = (message: MessageEvent) => {
      if (this.ws !== ws || typeof message.data !== "string") return;
      this.keepalive();
      let event: ServerEvent;
      try {
        event = JSON.parse(message.data) as ServerEvent;
      } catch {
        return;
      }
      if (typeof event !== "object" || typeof event.type !== "string") return;
      this.receive(event);
    };
    ws.onclose = (event: CloseEvent) => {
      if (this.ws !== ws) return;
      this.closed(event.code, event.reason);
    };
    ws.onerror = () => {
      // Always followed by close, which decides what to do.
    };
  }

  private receive(event: ServerEvent): void {
    if (event.type === "welcome") {
      this.attempt = 0;
      if (this.lastSeq === null) {
        // First connection: the welcome's state is current; history comes over REST.
        this.lastSeq = typeof event["last_seq"] === "number" ? event["last_seq"] : 0;
        // Opens the server's first-frame gate at once instead of after its 0.5 s wait.
        this.send({ type: "hello", last_seq: this.lastSeq });
      }
      this.setPhase("open");
    } else if (countsForReplay(event)) {
      this.lastSeq = Math.max(this.lastSeq ?? 0, event.seq);
    } else if (event.type === "error" && event["code"] === "token_expired") {
      void this.reauthenticate();
    }
    this.options.onEvent(event);
  }

  private async reauthenticate(): Promise<void> {
    const token = await this.options.getToken(true).catch(() => null);
    if (token !== null) {
      this.token = token;
      this.send({ type: "auth", access_token: token });
    }
  }

  private closed(code: number, reason: string): void {
    const ws = this.ws;
    this.ws = null;
    if (ws !== null) detach(ws);
    this.clearKeepalive();
    if (this.stopped) return;
    const decision = this.options.onClose(code, reason);
    if (decision === "stop") {
      this.stopped = true;
      this.setPhase("stopped");
    } else if (decision === "refresh-token") {
      this.setPhase("waiting");
      void this.connect(true);
    } else {
      this.schedule();
    }
  }

  private schedule(): void {
    this.setPhase("waiting");
    clearTimeout(this.retryTimer);
    const delay = backoffDelay(this.attempt, EVENTS_BACKOFF, this.options.random);
    this.attempt += 1;
    this.retryTimer = setTimeout(() => void this.connect(false), delay);
  }

  private keepalive(): void {
    const every = this.options.pingEvery ?? 20_000;
    const within = this.options.pongWithin ?? 10_000;
    this.clearKeepalive();
    this.pingTimer = setTimeout(() => {
      if (!this.send({ type: "ping" })) return;
      this.pongTimer = setTimeout(() => {
        // Nothing heard: the connection is dead even if the browser has not noticed.
        const ws = this.ws;
        this.closed(4000, "no answer to ping");
        ws?.close();
      }, within);
    }, every);
  }

  private clearKeepalive(): void {
    clearTimeout(this.pingTimer);
    clearTimeout(this.pongTimer);
  }
}

function detach(ws: WebSocket): void {
  ws.onopen = null;
  ws.onmessage = null;
  ws.onclose = null;
  ws.onerror = () => undefined;
}
