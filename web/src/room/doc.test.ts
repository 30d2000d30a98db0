import * as decoding from "lib0/decoding";
import { afterEach, describe, expect, it } from "vitest";
import { applyAwarenessUpdate, Awareness } from "y-protocols/awareness";
import * as Y from "yjs";
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
});
