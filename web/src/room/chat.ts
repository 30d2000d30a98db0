// The chat as the room shows it: stored messages (history and live, deduplicated by id and
// ordered by seq) and the outbox of messages sent but not yet acknowledged. Kept free of
// sockets so the merge and the resend rules are unit-tested.

export interface ChatAuthor {
  id: string;
  github_login?: string | null;
}

/** A stored message, from `GET …/messages` or a `chat.message` event. */
export interface StoredMessage {
  id: string;
  seq: number;
  author: ChatAuthor;
  body: string;
  created_at: string;
  client_id?: string | null;
}

export interface OutgoingMessage {
  clientId: string;
  body: string;
  author: ChatAuthor;
  createdAt: string;
  /** The API's words when it refused this message. */
  error: string | null;
  /** Whether it goes out again by itself (rate limits, outages) or waits for the person. */
  retrying: boolean;
}

export type ChatEntry =
  | { kind: "sent"; key: string; message: StoredMessage }
  | { kind: "pending"; key: string; message: OutgoingMessage };

/** Error codes after which sending the same message again later can succeed by itself. */
const TRANSIENT = new Set(["rate_limited", "unavailable", "internal", "deadline_exceeded", "token_expired", "unauthenticated"]);

export function isTransient(code: string): boolean {
  return TRANSIENT.has(code);
}

export class ChatLog {
  private readonly byId = new Map<string, StoredMessage>();
  private readonly outbox = new Map<string, OutgoingMessage>();
  private cached: ChatEntry[] | null = null;

  /** Adds stored messages (history pages or live ones); answers whether anything changed. */
  add(messages: Iterable<StoredMessage>): boolean {
    let changed = false;
    for (const message of messages) {
      const old = this.byId.get(message.id);
      if (old !== undefined && old.body === message.body && old.seq === message.seq && old.author.github_login === message.author.github_login) continue;
      // Keep a login we knew when a later copy lacks it.
      const author = message.author.github_login == null && old !== undefined ? old.author : message.author;
      this.byId.set(message.id, { ...message, author });
      const clientId = message.client_id;
      if (clientId != null) this.outbox.delete(clientId);
      changed = true;
    }
    if (changed) this.cached = null;
    return changed;
  }

  /** A new message to send; answers its client_id. */
  queue(body: string, author: ChatAuthor, clientId: string, now: Date = new Date()): OutgoingMessage {
    const message: OutgoingMessage = { clientId, body, author, createdAt: now.toISOString(), error: null, retrying: false };
    this.outbox.set(clientId, message);
    this.cached = null;
    return message;
  }

  /** `chat.ack`: stored with this seq and id. */
  ack(clientId: string, seq: number, id: string): void {
    const pending = this.outbox.get(clientId);
    if (pending === undefined) return;
    this.add([{ id, seq, author: pending.author, body: pending.body, created_at: pending.createdAt, client_id: clientId }]);
  }

  /** An `error` event naming this client_id. */
  fail(clientId: string, code: string, message: string): void {
    const pending = this.outbox.get(clientId);
    if (pending === undefined) return;
    this.outbox.set(clientId, { ...pending, error: message, retrying: isTransient(code) });
    this.cached = null;
  }

  /** The person asks to send a refused message again. */
  retry(clientId: string): OutgoingMessage | null {
    const pending = this.outbox.get(clientId);
    if (pending === undefined) return null;
    const again = { ...pending, error: null, retrying: false };
    this.outbox.set(clientId, again);
    this.cached = null;
    return again;
  }

  discard(clientId: string): void {
    if (this.outbox.delete(clientId)) this.cached = null;
  }

  /** What to (re)send on a fresh connection: unacknowledged messages not refused for good. */
  unacknowledged(): OutgoingMessage[] {
    return [...this.outbox.values()].filter((m) => m.error === null || m.retrying);
  }

  pending(clientId: string): OutgoingMessage | undefined {
    return this.outbox.get(clientId);
  }

  /** The lowest seq held (for loading earlier messages); null when empty. */
  lowestSeq(): number | null {
    let low: number | null = null;
    for (const m of this.byId.values()) if (low === null || m.seq < low) low = m.seq;
    return low;
  }

  get size(): number {
    return this.byId.size + this.outbox.size;
  }

  /** Stored messages by seq, then the outbox in the order it was written. */
  entries(): ChatEntry[] {
    this.cached ??= [
      ...[...this.byId.values()].sort((a, b) => a.seq - b.seq)
        .map((message): ChatEntry => ({ kind: "sent", key: message.client_id ?? message.id, message })),
      ...[...this.outbox.values()].map((message): ChatEntry => ({ kind: "pending", key: message.clientId, message })),
    ];
    return this.cached;
  }
}
