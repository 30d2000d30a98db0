import { EditorState } from "@codemirror/state";
import { EditorView } from "@codemirror/view";
import * as decoding from "lib0/decoding";
import * as encoding from "lib0/encoding";
import { afterEach, describe, expect, it, vi } from "vitest";
import { applyAwarenessUpdate, Awareness } from "y-protocols/awareness";
import { yCollab } from "y-codemirror.next";
import * as Y from "yjs";
import { personColor } from "../lib/colors";
import { DocLink } from "./doc";

const MESSAGE_AWARENESS = 1;

/** A document socket that records what the provider sends. */
class FakeDocSocket {
  static all: FakeDocSocket[] = [];
  readonly OPEN = 1;
  readyState = 0;
  binaryType = "blob";
  sent: Uint8Array[] = [];
  onopen: (() => void) | null = null;
  onmessage: ((event: { data: ArrayBuffer }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: (() => void) | null = null;
  constructor(readonly url: string) {
    FakeDocSocket.all.push(this);
  }
  send(data: Uint8Array) {
    this.sent.push(data);
  }
  close() {
    this.readyState = 3;
  }
  open() {
    this.readyState = 1;
    this.onopen?.();
  }
  /** A frame from the server: an awareness update relayed from a peer. */
  receiveAwareness(client: number, clock: number, state: unknown) {
    const encoder = encoding.createEncoder();
    encoding.writeVarUint(encoder, MESSAGE_AWARENESS);
    const inner = encoding.createEncoder();
    encoding.writeVarUint(inner, 1);
    encoding.writeVarUint(inner, client);
    encoding.writeVarUint(inner, clock);
    encoding.writeVarString(inner, JSON.stringify(state));
    encoding.writeVarUint8Array(encoder, encoding.toUint8Array(inner));
    this.onmessage?.({ data: encoding.toUint8Array(encoder).slice().buffer });
  }
  /** The awareness updates among the frames sent. */
  awarenessUpdates(): Uint8Array[] {
    const updates: Uint8Array[] = [];
    for (const frame of this.sent) {
      const decoder = decoding.createDecoder(frame);
      if (decoding.readVarUint(decoder) === MESSAGE_AWARENESS) updates.push(decoding.readVarUint8Array(decoder));
    }
    return updates;
  }
}

function lastSocket(): FakeDocSocket {
  const socket = FakeDocSocket.all[FakeDocSocket.all.length - 1];
  if (socket === undefined) throw new Error("no socket");
  return socket;
}

describe("DocLink", () => {
  const links: DocLink[] = [];
  const peers: Awareness[] = [];

  afterEach(() => {
    for (const link of links.splice(0)) link.destroy();
    for (const peer of peers.splice(0)) peer.destroy();
    FakeDocSocket.all = [];
  });

  function make(): DocLink {
    const link = new DocLink({
      serverUrl: "ws://host/api/v1/sessions/s",
      token: "t1",
      user: { name: "octocat", color: "#1c7ed6", colorLight: "#1c7ed633" },
      getToken: () => Promise.resolve("t1"),
      onDenied: () => undefined,
      onFinal: () => undefined,
      onChange: () => undefined,
      WebSocketImpl: FakeDocSocket as unknown as typeof WebSocket,
    });
    links.push(link);
    return link;
  }

  it("keeps your cursor visible to others across the reconnect for a new token", () => {
    const link = make();
    const me = link.provider.awareness.clientID;
    // Someone else in the session, who hears every awareness update we send (relayed).
    const peer = new Awareness(new Y.Doc());
    peers.push(peer);
    let heard = 0;
    const relay = () => {
      const updates = FakeDocSocket.all.flatMap((socket) => socket.awarenessUpdates());
      for (const update of updates.slice(heard)) applyAwarenessUpdate(peer, update, "server");
      heard = updates.length;
    };

    lastSocket().open();
    relay();
    expect(peer.getStates().get(me)?.["user"]).toMatchObject({ name: "octocat" });

    link.setToken("t2");
    const second = lastSocket();
    expect(second.url).toContain("access_token=t2");
    relay(); // the old socket's goodbye: our state removed
    expect(peer.getStates().has(me)).toBe(false);
    second.open();
    relay(); // the new socket's announcement must be newer than the goodbye
    expect(peer.getStates().get(me)?.["user"]).toMatchObject({ name: "octocat" });

    // And again on the next refresh.
    link.setToken("t3");
    lastSocket().open();
    relay();
    expect(peer.getStates().get(me)?.["user"]).toMatchObject({ name: "octocat" });
  });

  it("keeps the others' cursors after its own reconnect for a new token", () => {
    const link = make();
    const peer = { user: { name: "hubot", color: "#1c7ed6", colorLight: "#1c7ed633" } };
    lastSocket().open();
    lastSocket().receiveAwareness(4242, 3, peer);
    expect(link.provider.awareness.getStates().get(4242)).toEqual(peer);

    link.setToken("t2");
    expect(link.provider.awareness.getStates().has(4242)).toBe(false); // y-websocket's doing
    lastSocket().open();
    // The server hands the new connection every peer's current state: the same clock as before.
    lastSocket().receiveAwareness(4242, 3, peer);
    expect(link.provider.awareness.getStates().get(4242)).toEqual(peer);
  });

  it("renders a hostile peer's cursor with a safe colour and a capped name, and survives a bad cursor", () => {
    const link = make();
    const socket = lastSocket();
    socket.open();
    link.ytext.insert(0, "hello world\n");
    const view = new EditorView({
      parent: document.body,
      state: EditorState.create({ doc: link.ytext.toJSON(), extensions: [yCollab(link.ytext, link.provider.awareness)] }),
    });
    const errors = vi.spyOn(console, "error").mockImplementation(() => undefined);
    try {
      const at = JSON.parse(JSON.stringify(Y.createRelativePositionFromTypeIndex(link.ytext, 5))) as unknown;
      const name = "m".repeat(80);
      socket.receiveAwareness(4242, 1, {
        user: { name, color: "red;position:fixed;inset:0", colorLight: "red;position:fixed;inset:0" },
        cursor: { anchor: at, head: at },
      });
      const caret = view.dom.querySelector<HTMLElement>(".cm-ySelectionCaret");
      expect(caret).not.toBeNull();
      const colour = personColor("m".repeat(39)).color;
      expect(caret?.getAttribute("style")).toBe(`background-color: ${colour}; border-color: ${colour}`);
      expect(view.dom.querySelector(".cm-ySelectionInfo")?.textContent).toBe("m".repeat(39));
      const state = link.provider.awareness.getStates().get(4242) as { user: { color: string } };
      expect(state.user.color).toBe(colour);

      // A cursor Yjs cannot resolve would crash the plugin that draws every remote cursor.
      socket.receiveAwareness(4343, 1, { user: { name: "eve", color: "#000000" }, cursor: { anchor: {}, head: {} } });
      view.dispatch({ selection: { anchor: 1 } });
      expect(errors).not.toHaveBeenCalled();
      expect(view.dom.querySelectorAll(".cm-ySelectionCaret")).toHaveLength(1);
    } finally {
      errors.mockRestore();
      view.destroy();
    }
  });
});
