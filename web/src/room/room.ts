// The room's state and its connections: the session, members, presence, chat and the shared
// document, kept live over the events and document sockets. Components read the signals and
// call the methods; all socket and REST logic lives here and in the modules it uses.
import { batch, computed, signal } from "@preact/signals";
import type { EditorView } from "@codemirror/view";
import { api, ApiError, call, newId, type Member, type Session, type User } from "../api/client";
import { getToken, onToken, refresh } from "../auth/session";
import { notice } from "../lib/notice";
import { navigate } from "../lib/router";
import { ChatLog, type StoredMessage } from "./chat";
import { eventsCloseAction } from "./closeCodes";
import { cursorUser, DocLink } from "./doc";
import { EventsSocket, type CloseDecision, type EventsPhase, type ServerEvent } from "./events";
import { applyPresence, missingProfiles, peopleHere, type PresenceEntry, type Profile } from "./presence";
import { connectionText } from "./status";

export type { ServerEvent };

/** What the room's main area shows: the shared document, or a file of a review's diff. */
export type MainView =
  | { kind: "document" }
  | { kind: "file"; reviewId: string; path: string; line?: number };

export type Role = "owner" | "editor" | "viewer";
type Why = "removed" | "deleted" | "left";

/** Messages loaded at first: those among the last this many events. */
const RECENT_WINDOW = 500;
const EARLIER_WINDOW = 2000;
const PAGE = 100;
/** A reconnect for a new token is not worth showing as "Reconnecting…" for this long. */
const PLANNED_GRACE_MS = 3_000;

function socketBase(sessionId: string): string {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/api/v1/sessions/${encodeURIComponent(sessionId)}`;
}

function tokenSource(fresh: boolean): Promise<string | null> {
  return fresh ? refresh().catch(() => null) : getToken().catch(() => null);
}

function isRole(value: unknown): value is Role {
  return value === "owner" || value === "editor" || value === "viewer";
}

export class RoomController {
  readonly session = signal<Session | null>(null);
  /** Loading the session failed: 404 (not a member, or no such session) or another error. */
  readonly loadError = signal<ApiError | null>(null);
  readonly role = signal<Role | null>(null);
  readonly members = signal<Member[]>([]);
  readonly presence = signal<ReadonlyMap<string, PresenceEntry>>(new Map());
  readonly chatVersion = signal(0);
  readonly chat = new ChatLog();
  readonly history = signal<{ state: "loading" | "done" | "error"; error: string | null; floor: number }>(
    { state: "loading", error: null, floor: 0 });
  readonly eventsPhase = signal<EventsPhase>("connecting");
  readonly eventsDone = signal(false);
  readonly docLink = signal<DocLink | null>(null);
  /** The shared document's editor, while it is on screen (AI diagnostics go into it). */
  readonly editorView = signal<EditorView | null>(null);
  /** The main area: the document, or a review file's diff (set by the review panel). */
  readonly mainView = signal<MainView>({ kind: "document" });
  readonly docUp = signal(false);
  readonly docLoaded = signal(false);
  readonly online = signal(typeof navigator === "undefined" ? true : navigator.onLine);
  readonly downSince = signal<number | null>(Date.now());
  readonly now = signal(Date.now());
  /** Why the editor went read-only or was reloaded after a refused edit. */
  readonly docProblem = signal<string | null>(null);
  private readonly deniedReadOnly = signal(false);
  /** A room-wide problem from the events socket (live delivery interrupted, say). */
  readonly liveProblem = signal<string | null>(null);

  readonly ended = computed(() => this.session.value?.status === "ended");
  readonly readOnly = computed(() => {
    const role = this.role.value;
    return (role !== "owner" && role !== "editor") || this.ended.value || this.deniedReadOnly.value;
  });
  readonly profiles = computed(() => {
    const map = new Map<string, Profile>();
    for (const m of this.members.value) map.set(m.user.id, m.user);
    return map;
  });
  readonly people = computed(() => peopleHere(this.presence.value.values(), this.profiles.value, this.me));
  readonly status = computed(() => connectionText({
    online: this.online.value,
    eventsUp: this.eventsPhase.value === "open" || this.eventsDone.value,
    docUp: this.docUp.value,
    downSince: this.downSince.value,
    now: this.now.value,
  }));

  private events: EventsSocket | null = null;
  private stopped = false;
  private left = false;
  private historyStarted = false;
  private membersTimer: ReturnType<typeof setTimeout> | undefined;
  private recreateTimer: ReturnType<typeof setTimeout> | undefined;
  private ticker: ReturnType<typeof setInterval> | undefined;
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();
  private readonly cleanups: (() => void)[] = [];
  private readonly listeners = new Set<(event: ServerEvent) => void>();
  private sawRemoval = false;
  /** The person asked to leave: the removal that follows is their own doing. */
  private leaving = false;
  private sawDeletion = false;

  constructor(readonly sessionId: string, readonly me: User) {}

  // --- lifecycle --------------------------------------------------------------------------

  async start(): Promise<void> {
    const goneOnline = () => {
      this.online.value = true;
      this.events?.retryNow();
      const link = this.docLink.value;
      if (link !== null && !link.provider.wsconnected) link.provider.connect();
    };
    const goneOffline = () => { this.online.value = false; };
    // An ended session's events socket has closed: catch up on members when the person looks.
    const looked = () => { if (this.eventsDone.value && document.visibilityState === "visible") void this.loadMembers(); };
    addEventListener("online", goneOnline);
    addEventListener("offline", goneOffline);
    addEventListener("focus", looked);
    document.addEventListener("visibilitychange", looked);
    this.cleanups.push(() => {
      removeEventListener("online", goneOnline);
      removeEventListener("offline", goneOffline);
      removeEventListener("focus", looked);
      document.removeEventListener("visibilitychange", looked);
    });
    this.cleanups.push(onToken((token) => {
      this.events?.setToken(token);
      this.docLink.value?.setToken(token);
    }));
    this.ticker = setInterval(() => this.tick(), 1000);

    try {
      const session = await call(api.GET("/api/v1/sessions/{id}", { params: { path: { id: this.sessionId } } }));
      if (this.stopped) return;
      this.adoptSession(session, isRole(session.role) ? session.role : null);
    } catch (error) {
      if (!this.stopped) this.loadError.value = error as ApiError;
      return;
    }
    this.events = new EventsSocket({
      url: `${socketBase(this.sessionId)}/events`,
      getToken: tokenSource,
      onEvent: (event) => this.onEvent(event),
      onPhase: (phase) => { this.eventsPhase.value = phase; this.tick(); },
      onClose: (code) => this.onEventsClose(code),
      outbox: () => this.chat.unacknowledged().map((m) => ({ body: m.body, client_id: m.clientId })),
    });
    this.events.start();
    await this.openDoc();
  }

  /** Every server event of the events socket, after the room's own handling (replays after
   * a reconnect included: listeners dedupe by id or seq). Answers the unsubscribe. */
  listen(listener: (event: ServerEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.ticker);
    clearTimeout(this.membersTimer);
    clearTimeout(this.recreateTimer);
    for (const timer of this.timers) clearTimeout(timer);
    for (const cleanup of this.cleanups.splice(0)) cleanup();
    this.listeners.clear();
    this.events?.stop();
    this.docLink.value?.destroy();
  }

  private later(ms: number, run: () => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      if (!this.stopped) run();
    }, ms);
    this.timers.add(timer);
  }

  private tick(): void {
    const link = this.docLink.value;
    const planned = link !== null && Date.now() - link.plannedAt < PLANNED_GRACE_MS && link.loaded;
    const docUp = link !== null && (link.up || planned);
    const eventsUp = this.eventsPhase.value === "open" || this.eventsDone.value;
    batch(() => {
      this.docUp.value = docUp;
      this.docLoaded.value = link?.loaded ?? false;
      if (docUp && eventsUp) this.downSince.value = null;
      else this.downSince.value ??= Date.now();
      this.now.value = Date.now();
    });
  }

  /** Back to the sessions list, saying why. */
  private leave(why: Why): void {
    if (this.left || this.stopped) return;
    this.left = true;
    const title = this.session.value?.title ?? "the session";
    if (this.leaving && why === "removed") why = "left";
    notice.value = why === "removed" ? `You were removed from ${title}.`
      : why === "deleted" ? `${title} was deleted by its owner.`
      : `You left ${title}.`;
    this.stop();
    navigate("/");
  }

  // --- the document -----------------------------------------------------------------------

  private async openDoc(): Promise<void> {
    const token = await tokenSource(false);
    if (this.stopped) return;
    if (token === null) {
      this.docProblem.value = "Could not get a sign-in token for the document; retrying.";
      this.later(3000, () => void this.openDoc());
      return;
    }
    const link = new DocLink({
      serverUrl: socketBase(this.sessionId),
      token,
      user: cursorUser(this.me.github_login),
      getToken: tokenSource,
      onDenied: (reason) => this.onDenied(link, reason),
      onFinal: (why) => {
        if (why === "removed") this.sawRemoval = true;
        this.leave(why);
      },
      onChange: () => this.tick(),
    });
    this.docLink.value = link;
    this.tick();
  }

  /** An update was refused: the local document holds edits the server will never have. */
  private onDenied(link: DocLink, reason: string): void {
    if (this.docLink.value !== link) return;
    const sizeLimit = /size limit|too large/i.test(reason);
    if (!sizeLimit) this.deniedReadOnly.value = true;
    this.docProblem.value = sizeLimit
      ? `Your last change was not saved: ${reason}. The document was reloaded from the server.`
      : `Your edits were not saved: ${reason}. The document was reloaded from the server.`;
    // Several refusals arrive for a burst of edits: recreate once.
    if (this.recreateTimer !== undefined) return;
    this.recreateTimer = setTimeout(() => {
      this.recreateTimer = undefined;
      if (this.stopped) return;
      this.docLink.value?.destroy();
      this.docLink.value = null;
      void this.openDoc();
    }, 150);
  }

  dismissDocProblem(): void {
    this.docProblem.value = null;
  }

  // --- the events socket ------------------------------------------------------------------

  private onEventsClose(code: number): CloseDecision {
    const action = eventsCloseAction(code, { ended: this.ended.value, deleted: this.sawDeletion });
    switch (action) {
      case "refresh-token":
        return "refresh-token";
      case "removed":
        this.sawRemoval = true;
        this.leave("removed");
        return "stop";
      case "ended":
        this.liveEnded();
        return "stop";
      case "check":
        void this.checkSession();
        return "stop";
      case "retry":
        return "retry";
    }
  }

  /** The session ended and its events socket has said all: nothing live follows, so the
   * presence it reported would only go stale (people who leave would stay listed). Only
   * yourself is known to be here; People says that live presence ended. */
  private liveEnded(): void {
    batch(() => {
      this.eventsDone.value = true;
      this.presence.value = new Map();
    });
  }

  /** After a close that may mean the session is gone: ask the REST API. */
  private async checkSession(): Promise<void> {
    try {
      const session = await call(api.GET("/api/v1/sessions/{id}", { params: { path: { id: this.sessionId } } }));
      if (this.stopped) return;
      this.adoptSession(session, isRole(session.role) ? session.role : this.role.value);
      if (session.status === "ended") this.liveEnded();
      else this.events?.start();
    } catch (error) {
      if (this.stopped) return;
      if ((error as ApiError).status === 404) this.leave(this.sawRemoval ? "removed" : "deleted");
      else this.later(3000, () => void this.checkSession());
    }
  }

  private adoptSession(session: Session, role: Role | null): void {
    batch(() => {
      this.session.value = { ...session, role };
      this.role.value = role;
    });
  }

  private onEvent(event: ServerEvent): void {
    switch (event.type) {
      case "welcome":
        this.onWelcome(event);
        break;
      case "chat.message":
        if (this.chat.add([event as unknown as StoredMessage])) this.chatVersion.value++;
        break;
      case "chat.ack":
        this.chat.ack(String(event["client_id"]), Number(event["seq"]), String(event["id"]));
        this.chatVersion.value++;
        break;
      case "error":
        this.onError(event);
        break;
      case "presence.joined":
      case "presence.updated":
      case "presence.left": {
        this.presence.value = applyPresence(this.presence.value, event.type, event as unknown as PresenceEntry);
        if (missingProfiles(this.presence.value.values(), this.profiles.value)) this.refreshMembers();
        break;
      }
      case "member.joined":
        this.refreshMembers();
        break;
      case "member.role_changed": {
        const userId = String(event["user_id"]);
        const role = event["role"];
        if (!isRole(role)) break;
        this.members.value = this.members.value.map((m) => (m.user.id === userId ? { ...m, role } : m));
        if (userId === this.me.id) {
          batch(() => {
            this.role.value = role;
            const session = this.session.value;
            if (session !== null) this.session.value = { ...session, role };
            this.deniedReadOnly.value = false;
          });
        }
        if (!this.members.value.some((m) => m.user.id === userId)) this.refreshMembers();
        break;
      }
      case "member.removed": {
        const userId = String(event["user_id"]);
        this.members.value = this.members.value.filter((m) => m.user.id !== userId);
        if (userId === this.me.id) {
          this.sawRemoval = true;
          this.leave("removed");
        }
        break;
      }
      case "session.updated":
      case "session.ended": {
        const session = event["session"] as Session | undefined;
        if (session !== undefined) this.adoptSession(session, this.role.value);
        break;
      }
      case "session.deleted":
        this.sawDeletion = true;
        this.leave("deleted");
        break;
      default:
        break;
    }
    if (event.type !== "error" && this.liveProblem.value !== null && typeof event.seq === "number") {
      this.liveProblem.value = null;
    }
    for (const listener of this.listeners) listener(event);
  }

  private onWelcome(event: ServerEvent): void {
    const session = event["session"] as Session | undefined;
    const role = isRole(event["role"]) ? event["role"] : this.role.value;
    const members = Array.isArray(event["members"]) ? (event["members"] as Member[]) : this.members.value;
    const presence = Array.isArray(event["presence"]) ? (event["presence"] as PresenceEntry[]) : [];
    batch(() => {
      if (session !== undefined) this.adoptSession(session, role);
      this.members.value = members;
      this.presence.value = new Map(presence.map((p) => [p.connection_id, p]));
      this.deniedReadOnly.value = false;
      this.liveProblem.value = null;
    });
    if (missingProfiles(presence, this.profiles.value)) this.refreshMembers();
    if (!this.historyStarted) {
      this.historyStarted = true;
      void this.loadRecent(typeof event["last_seq"] === "number" ? event["last_seq"] : 0);
    }
  }

  private onError(event: ServerEvent): void {
    const code = String(event["code"]);
    const message = typeof event["message"] === "string" ? event["message"] : code;
    const clientId = event["client_id"];
    if (typeof clientId === "string") {
      this.chat.fail(clientId, code, message);
      this.chatVersion.value++;
      const pending = this.chat.pending(clientId);
      if (pending?.retrying === true) {
        const after = typeof event["retry_after"] === "number" ? event["retry_after"] : 1;
        this.later(Math.max(500, after * 1000), () => this.resend(clientId));
      }
      return;
    }
    if (code === "token_expired") return; // the socket sends a fresh token by itself
    if (event["socket"] === "doc") return; // the document socket's own refusal handles it
    this.liveProblem.value = message;
  }

  private refreshMembers(): void {
    clearTimeout(this.membersTimer);
    this.membersTimer = setTimeout(() => void this.loadMembers(), 200);
  }

  private async loadMembers(): Promise<void> {
    try {
      const page = await call(api.GET("/api/v1/sessions/{id}/members", { params: { path: { id: this.sessionId } } }));
      if (!this.stopped) this.members.value = page.items;
    } catch {
      // The next welcome or member event brings them.
    }
  }

  // --- chat -------------------------------------------------------------------------------

  /** Pages of messages with seq in (after, upTo], ascending. */
  private async fetchMessages(after: number, upTo: number | null): Promise<StoredMessage[]> {
    const found: StoredMessage[] = [];
    let cursor = after;
    for (;;) {
      const page = await call(api.GET("/api/v1/sessions/{id}/messages", {
        params: { path: { id: this.sessionId }, query: { after_seq: cursor, limit: PAGE } },
      }));
      for (const m of page.items) if (upTo === null || m.seq <= upTo) found.push(m);
      const last = page.items[page.items.length - 1];
      if (page.next_cursor === null || last === undefined || (upTo !== null && last.seq >= upTo)) return found;
      cursor = last.seq;
    }
  }

  private async loadRecent(lastSeq: number): Promise<void> {
    let floor = Math.max(0, lastSeq - RECENT_WINDOW);
    try {
      let found = await this.fetchMessages(floor, null);
      // A quiet chat among busy events: look further back for a screenful.
      while (found.length < 20 && floor > 0) {
        const older = Math.max(0, floor - EARLIER_WINDOW);
        found = [...(await this.fetchMessages(older, floor)), ...found];
        floor = older;
      }
      if (this.stopped) return;
      if (this.chat.add(found)) this.chatVersion.value++;
      this.history.value = { state: "done", error: null, floor };
    } catch (error) {
      if (!this.stopped) this.history.value = { state: "error", error: (error as ApiError).message, floor };
      this.historyStarted = false;
    }
  }

  async loadEarlier(): Promise<void> {
    const { floor } = this.history.value;
    if (floor <= 0) return;
    const from = Math.max(0, floor - EARLIER_WINDOW);
    this.history.value = { state: "loading", error: null, floor };
    try {
      const found = await this.fetchMessages(from, floor);
      if (this.chat.add(found)) this.chatVersion.value++;
      this.history.value = { state: "done", error: null, floor: from };
    } catch (error) {
      this.history.value = { state: "error", error: (error as ApiError).message, floor };
    }
  }

  retryHistory(): void {
    if (this.historyStarted) return;
    this.historyStarted = true;
    this.history.value = { ...this.history.value, state: "loading", error: null };
    void this.loadRecent(this.events?.lastSeq ?? 0);
  }

  /** Sends a chat message; it shows at once as pending and is marked sent on its ack. */
  sendChat(body: string): void {
    const text = body.trim();
    if (text === "" || this.ended.value) return;
    const clientId = newId();
    this.chat.queue(text, { id: this.me.id, github_login: this.me.github_login }, clientId);
    this.chatVersion.value++;
    this.events?.sendChat({ body: text, client_id: clientId });
  }

  resend(clientId: string): void {
    const again = this.chat.retry(clientId);
    this.chatVersion.value++;
    if (again !== null) this.events?.sendChat({ body: again.body, client_id: again.clientId });
  }

  discard(clientId: string): void {
    this.chat.discard(clientId);
    this.chatVersion.value++;
  }

  // --- owner actions (each throws an ApiError with the API's words) ------------------------

  async invite(login: string, role: "editor" | "viewer"): Promise<void> {
    await call(api.POST("/api/v1/sessions/{id}/invitations", {
      params: { path: { id: this.sessionId } },
      body: { github_login: login, role },
    }));
  }

  /** A link invitation; answers the URL to share. */
  async createLink(role: "editor" | "viewer"): Promise<string> {
    const invitation = await call(api.POST("/api/v1/sessions/{id}/invitations", {
      params: { path: { id: this.sessionId } },
      body: { role },
    }));
    if (invitation.token === null) throw new ApiError(500, "internal", "the server did not answer a link token");
    return `${location.origin}/invitations/${encodeURIComponent(invitation.token)}`;
  }

  async setRole(userId: string, role: "editor" | "viewer"): Promise<void> {
    const member = await call(api.PATCH("/api/v1/sessions/{id}/members/{user_id}", {
      params: { path: { id: this.sessionId, user_id: userId } },
      body: { role },
    }));
    this.members.value = this.members.value.map((m) => (m.user.id === userId ? { ...m, role: member.role } : m));
  }

  async removeMember(userId: string): Promise<void> {
    await call(api.DELETE("/api/v1/sessions/{id}/members/{user_id}", {
      params: { path: { id: this.sessionId, user_id: userId } },
    }));
    this.members.value = this.members.value.filter((m) => m.user.id !== userId);
  }

  /** Renames the session, unless it changed since `version` (the one the person started from). */
  async rename(title: string, version: number): Promise<void> {
    try {
      const session = await call(api.PATCH("/api/v1/sessions/{id}", {
        params: { path: { id: this.sessionId }, header: { "If-Match": String(version) } },
        body: { title },
      }));
      this.adoptSession(session, this.role.value);
    } catch (error) {
      const e = error as ApiError;
      if (e.status !== 412) throw e;
      await this.checkSessionQuietly();
      throw new ApiError(412, e.code, "Someone else changed this session meanwhile; the current title is shown. Save again to replace it.");
    }
  }

  private async checkSessionQuietly(): Promise<void> {
    try {
      const session = await call(api.GET("/api/v1/sessions/{id}", { params: { path: { id: this.sessionId } } }));
      this.adoptSession(session, isRole(session.role) ? session.role : this.role.value);
    } catch {
      // The rename error is what the person needs to see.
    }
  }

  async end(): Promise<void> {
    const session = await call(api.POST("/api/v1/sessions/{id}/end", { params: { path: { id: this.sessionId } } }));
    this.adoptSession(session, this.role.value);
  }

  async leaveSession(): Promise<void> {
    this.leaving = true;
    try {
      await call(api.DELETE("/api/v1/sessions/{id}/members/{user_id}", {
        params: { path: { id: this.sessionId, user_id: this.me.id } },
      }));
    } catch (error) {
      this.leaving = false;
      throw error;
    }
    this.leave("left");
  }
}
