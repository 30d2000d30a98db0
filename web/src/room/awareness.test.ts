import * as decoding from "lib0/decoding";
import * as encoding from "lib0/encoding";
import { describe, expect, it } from "vitest";
import { personColor } from "../lib/colors";
import { cleanAwarenessState, cleanAwarenessUpdate, NAME_MAX } from "./awareness";

const cursor = {
  anchor: { type: null, tname: "code", item: { client: 7, clock: 3 }, assoc: 0 },
  head: { type: null, tname: "code", item: null, assoc: -1 },
};

function update(entries: [number, number, unknown][]): Uint8Array {
  const encoder = encoding.createEncoder();
  encoding.writeVarUint(encoder, entries.length);
  for (const [client, clock, state] of entries) {
    encoding.writeVarUint(encoder, client);
    encoding.writeVarUint(encoder, clock);
    encoding.writeVarString(encoder, JSON.stringify(state));
  }
  return encoding.toUint8Array(encoder);
}

function read(bytes: Uint8Array): [number, number, unknown][] {
  const decoder = decoding.createDecoder(bytes);
  const entries: [number, number, unknown][] = [];
  const count = decoding.readVarUint(decoder);
  for (let i = 0; i < count; i++) {
    entries.push([decoding.readVarUint(decoder), decoding.readVarUint(decoder), JSON.parse(decoding.readVarString(decoder))]);
  }
  return entries;
}

describe("cleanAwarenessState", () => {
  it("keeps a well-formed state as it is", () => {
    const state = { user: { name: "hubot", color: "#1c7ed6", colorLight: "#1c7ed633" }, cursor };
    expect(cleanAwarenessState(state)).toEqual(state);
    expect(cleanAwarenessState(null)).toBeNull();
  });

  it("replaces a colour that is not a hex colour with the name's", () => {
    const hubot = personColor("hubot");
    expect(cleanAwarenessState({ user: { name: "hubot", color: "red;position:fixed;inset:0", colorLight: "url(x)" } }))
      .toEqual({ user: { name: "hubot", color: hubot.color, colorLight: hubot.light } });
    expect(cleanAwarenessState({ user: { name: "hubot", color: "#12345", colorLight: 4 } }))
      .toEqual({ user: { name: "hubot", color: hubot.color, colorLight: hubot.light } });
    expect(cleanAwarenessState({ user: { name: "hubot", color: "#aabbcc\n;x" } }))
      .toMatchObject({ user: { color: hubot.color } });
    // Missing colours are filled in, so y-codemirror's own fallbacks are never used either.
    expect(cleanAwarenessState({ user: { name: "hubot" } })).toEqual({ user: { name: "hubot", color: hubot.color, colorLight: hubot.light } });
  });

  it("caps the name at 39 characters and drops one that is not text", () => {
    const long = "x".repeat(500);
    const clean = cleanAwarenessState({ user: { name: long, color: "#000000" } }) as { user: { name: string } };
    expect(clean.user.name).toHaveLength(NAME_MAX);
    const odd = cleanAwarenessState({ user: { name: { toString: 1 }, color: "#000000" } }) as { user: Record<string, unknown> };
    expect(odd.user["name"]).toBeUndefined();
    expect(cleanAwarenessState({ user: "mallory" })).toEqual({ user: { color: personColor("").color, colorLight: personColor("").light } });
  });

  it("drops a cursor that Yjs could not resolve (or that points outside the document)", () => {
    const bad = [
      "here", { anchor: {}, head: {} }, { anchor: cursor.anchor }, { anchor: cursor.anchor, head: { tname: "other" } },
      { anchor: { item: { client: "1", clock: 2 } }, head: cursor.head }, { anchor: { item: { client: -1, clock: 2 } }, head: cursor.head },
      { anchor: cursor.anchor, head: { type: { client: 1, clock: 1.5 } } }, { anchor: cursor.anchor, head: { ...cursor.head, assoc: "x" } },
    ];
    for (const c of bad) expect(cleanAwarenessState({ cursor: c }), JSON.stringify(c)).toEqual({ cursor: null });
    expect(cleanAwarenessState({ cursor: null })).toEqual({ cursor: null });
  });

  it("turns a state that is not an object into an empty one", () => {
    expect(cleanAwarenessState(5)).toEqual({});
    expect(cleanAwarenessState(["a"])).toEqual({});
  });
});

describe("cleanAwarenessUpdate", () => {
  it("cleans every peer's entry, keeps clocks and removals, and leaves the local client's alone", () => {
    const hostile = { user: { name: "mallory", color: "red;position:fixed;inset:0" } };
    const mine = { user: { name: "octocat", color: "not checked" } };
    const cleaned = cleanAwarenessUpdate(update([[11, 4, hostile], [12, 9, null], [99, 2, mine]]), 99);
    expect(cleaned).not.toBeNull();
    const mallory = personColor("mallory");
    expect(read(cleaned ?? new Uint8Array())).toEqual([
      [11, 4, { user: { name: "mallory", color: mallory.color, colorLight: mallory.light } }],
      [12, 9, null],
      [99, 2, mine],
    ]);
  });

  it("answers null for an update it cannot read", () => {
    const encoder = encoding.createEncoder();
    encoding.writeVarUint(encoder, 1);
    encoding.writeVarUint(encoder, 1);
    encoding.writeVarUint(encoder, 1);
    encoding.writeVarString(encoder, "{not json");
    expect(cleanAwarenessUpdate(encoding.toUint8Array(encoder), 5)).toBeNull();
    expect(cleanAwarenessUpdate(new Uint8Array([3, 1]), 5)).toBeNull();
  });
});
