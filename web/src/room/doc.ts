// The shared document: a Y.Doc whose Y.Text "code" is synced over the document socket by
// y-websocket's WebsocketProvider, with the room's own handling of tokens, close codes and
// refused updates (docs/api.md "Realtime").
import * as decoding from "lib0/decoding";
import { applyAwarenessUpdate } from "y-protocols/awareness";
import * as authProtocol from "y-protocols/auth";
import { messageAuth, messageAwareness, WebsocketProvider } from "y-websocket";
import * as Y from "yjs";
import { personColor } from "../lib/colors";
import { cleanAwarenessUpdate } from "./awareness";
import { docCloseAction } from "./closeCodes";

export interface CursorUser {
  name: string;
  color: string;
  colorLight: string;
}

/** Who a cursor belongs to, as peers see it: the GitHub login and its colour (keyed on the
 * login, so a person has the same colour on every deployment, not one per database). */
export function cursorUser(login: string): CursorUser {
  const { color, light } = personColor(login);
  return { name: login, color, colorLight: light };
}

export interface DocLinkOptions {
  /** ws(s)://host/api/v1/sessions/{id} (the provider adds the room name, `doc`). */
  serverUrl: string;
  token: string;
  user: CursorUser;
  getToken: (fresh: boolean) => Promise<string | null>;
  /** The server refused an update (the reason in its words). */
  onDenied: (reason: string) => void;
  /** The socket closed for good: removed from the session, or the session deleted. */
  onFinal: (why: "removed" | "deleted") => void;
  /** Connection or sync state changed. */
  onChange: () => void;
  /** Tests hand in a fake. */
  WebSocketImpl?: typeof WebSocket;
}

/** How long to wait after 4429 (too many frames) before reconnecting. */
const RATE_LIMIT_PAUSE_MS = 2_000;

export class DocLink {
  readonly doc = new Y.Doc();
  readonly ytext: Y.Text;
  readonly provider: WebsocketProvider;
  readonly undoManager: Y.UndoManager;
  /** When a reconnect for a new token started (its short gap is not "Reconnecting…"). */
  plannedAt = 0;
  private destroyed = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private everSynced = false;

  constructor(private readonly options: DocLinkOptions) {
    this.ytext = this.doc.getText("code");
    this.undoManager = new Y.UndoManager(this.ytext);
    this.provider = new WebsocketProvider(options.serverUrl, "doc", this.doc, {
      connect: false,
      params: { access_token: options.token },
      // Its BroadcastChannel would carry a viewer tab's edits into an editor tab.
      disableBc: true,
      ...(options.WebSocketImpl !== undefined ? { WebSocketPolyfill: options.WebSocketImpl } : {}),
    });
    // Our own permission-denied handler instead of y-websocket's console.warn.
    this.provider.messageHandlers[messageAuth] = (_encoder, decoder, provider) => {
      authProtocol.readAuthMessage(decoder, provider.doc, (_doc, reason: string) => {
        if (!this.destroyed) options.onDenied(reason);
      });
    };
    // Peers' awareness is cleaned before it is applied: y-codemirror renders it (awareness.ts).
    this.provider.messageHandlers[messageAwareness] = (_encoder, decoder, provider) => {
      const update = cleanAwarenessUpdate(decoding.readVarUint8Array(decoder), provider.awareness.clientID);
      if (update !== null) applyAwarenessUpdate(provider.awareness, update, provider);
    };
    this.provider.on("status", ({ status }) => {
      // disconnect() told peers our awareness was removed at the current clock, and the new
      // connection re-announces it at that same clock, which y-protocols ignores (it takes
      // only a newer clock): the cursor would vanish for others until the next cursor move.
      // Setting the state again moves the clock on, and the update goes out on this socket.
      const awareness = this.provider.awareness;
      if (status === "connected") {
        const state = awareness.getLocalState();
        if (state !== null) awareness.setLocalState({ ...state });
      } else if (status === "disconnected") {
        // The other half: on a disconnect y-websocket removes every peer's state but keeps
        // its clock, so the same state the server hands the next connection is ignored and
        // the peers' cursors vanish here until each of them changes or renews (15 s). Forget
        // those clocks too, so the next connection's copies are taken as new.
        for (const id of [...awareness.meta.keys()]) {
          if (id !== awareness.clientID && !awareness.states.has(id)) awareness.meta.delete(id);
        }
      }
      options.onChange();
    });
    this.provider.on("sync", (synced: boolean) => {
      if (synced) this.everSynced = true;
      options.onChange();
    });
    this.provider.on("closed", (event: { code: number; reason: string }) => this.closed(event.code));
    this.provider.awareness.setLocalStateField("user", options.user);
    this.provider.connect();
  }

  /** Open and synced. */
  get up(): boolean {
    return this.provider.wsconnected && this.provider.synced;
  }

  /** Whether it synced at least once (the editor shows the document, not a blank page). */
  get loaded(): boolean {
    return this.everSynced;
  }

  /** A new access token: reconnect with it now, before the server closes with 4401 (the
   * CRDT resync loses nothing). */
  setToken(token: string): void {
    if (this.destroyed || this.provider.params["access_token"] === token) return;
    this.provider.params = { ...this.provider.params, access_token: token };
    if (this.provider.wsconnected || this.provider.wsconnecting) {
      this.plannedAt = Date.now();
      this.provider.disconnect();
      this.provider.connect();
    }
  }

  private closed(code: number): void {
    if (this.destroyed) return;
    const action = docCloseAction(code);
    if (action === "refresh-token") {
      void this.options.getToken(true).then((token) => {
        if (this.destroyed) return;
        if (token !== null) this.provider.params = { ...this.provider.params, access_token: token };
        // Without a token the auth module signs the person out and the room goes away.
        if (token !== null) this.provider.connect();
      });
    } else if (action === "wait") {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => { if (!this.destroyed) this.provider.connect(); },
        RATE_LIMIT_PAUSE_MS + Math.random() * 1000);
    } else if (action === "removed" || action === "deleted") {
      this.options.onFinal(action);
    }
    this.options.onChange();
  }

  destroy(): void {
    this.destroyed = true;
    clearTimeout(this.timer);
    this.provider.awareness.setLocalState(null);
    this.provider.destroy();
    this.undoManager.destroy();
    this.doc.destroy();
  }
}
