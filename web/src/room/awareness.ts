// Peers' awareness states (cursors, names, colours) are untrusted: y-codemirror.next renders a
// peer's `user.name` as text, its `user.color` / `colorLight` into an inline style attribute
// and its `cursor` through Yjs' relative positions (which throw on some shapes, crashing the
// plugin that draws every remote cursor). The gateway rewrites `user` as well (the name is the
// connection's login, only hex colours pass), but the room does not count on it: every
// awareness update from the document socket is cleaned before it is applied, so nothing
// hostile ever reaches the Awareness states y-codemirror reads.
import * as decoding from "lib0/decoding";
import * as encoding from "lib0/encoding";
import { personColor } from "../lib/colors";

/** The longest GitHub login. */
export const NAME_MAX = 39;
const HEX_COLOR = /^#[0-9a-fA-F]{6}([0-9a-fA-F]{2})?$/;

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isId(value: unknown): boolean {
  return isObject(value) && Number.isSafeInteger(value["client"]) && Number.isSafeInteger(value["clock"])
    && (value["client"] as number) >= 0 && (value["clock"] as number) >= 0;
}

/** A relative position as Yjs serialises one, pointing into the document's only type, "code". */
function isPosition(value: unknown): boolean {
  if (!isObject(value)) return false;
  const { type, tname, item, assoc } = value;
  if (type != null && !isId(type)) return false;
  if (item != null && !isId(item)) return false;
  if (tname != null && tname !== "code") return false;
  if (assoc != null && !Number.isSafeInteger(assoc)) return false;
  // With none of the three, Yjs throws ("unexpected case").
  return type != null || item != null || tname != null;
}

function cleanUser(user: unknown): Json {
  const given = isObject(user) ? user : {};
  const name = typeof given["name"] === "string" ? Array.from(given["name"]).slice(0, NAME_MAX).join("") : undefined;
  const derived = personColor(name ?? "");
  const color = typeof given["color"] === "string" && HEX_COLOR.test(given["color"]) ? given["color"] : derived.color;
  const colorLight = typeof given["colorLight"] === "string" && HEX_COLOR.test(given["colorLight"])
    ? given["colorLight"] : derived.light;
  const clean: Json = { ...given, color, colorLight };
  if (name === undefined) delete clean["name"];
  else clean["name"] = name;
  return clean;
}

/** A peer's awareness state, safe to render: `user.name` a string of at most 39 characters,
 * `user.color` / `colorLight` hex colours (else the colour of the name), `cursor` null unless
 * it is a pair of relative positions into the document. */
export function cleanAwarenessState(state: unknown): unknown {
  if (state === null) return null; // the peer left
  if (!isObject(state)) return {};
  const clean: Json = { ...state };
  if ("user" in state) clean["user"] = cleanUser(state["user"]);
  if ("cursor" in state && state["cursor"] !== null) {
    const cursor = state["cursor"];
    if (!isObject(cursor) || !isPosition(cursor["anchor"]) || !isPosition(cursor["head"])) clean["cursor"] = null;
  }
  return clean;
}

/** An awareness update (y-protocols' encoding) with every state but `localClientId`'s cleaned;
 * null when it cannot be read (a malformed update is dropped, as the server would). */
export function cleanAwarenessUpdate(update: Uint8Array, localClientId: number): Uint8Array | null {
  try {
    const decoder = decoding.createDecoder(update);
    const encoder = encoding.createEncoder();
    const count = decoding.readVarUint(decoder);
    encoding.writeVarUint(encoder, count);
    for (let i = 0; i < count; i++) {
      const clientId = decoding.readVarUint(decoder);
      const clock = decoding.readVarUint(decoder);
      const state: unknown = JSON.parse(decoding.readVarString(decoder));
      encoding.writeVarUint(encoder, clientId);
      encoding.writeVarUint(encoder, clock);
      encoding.writeVarString(encoder, JSON.stringify(clientId === localClientId ? state : cleanAwarenessState(state)));
    }
    return encoding.toUint8Array(encoder);
  } catch {
    return null;
  }
}
