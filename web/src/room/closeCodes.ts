// What a closed socket means for the room (docs/api.md "Realtime"): the close codes of the
// document and events sockets, decided in one place.

export const CLOSE = {
  restart: 1012,
  tryAgain: 1013,
  tokenExpired: 4401,
  revoked: 4403,
  ended: 4410,
  rateLimited: 4429,
} as const;

export type DocCloseAction =
  | "refresh-token" // 4401: reconnect with a fresh token
  | "wait" // 4429: too many frames; wait, then reconnect
  | "removed" // 4403: no longer a member
  | "deleted" // 4410: the session is gone
  | "provider"; // anything else: y-websocket reconnects by itself

/** The document socket's close codes. Only 4400–4499 stop y-websocket 3.1 (its "closed"). */
export function docCloseAction(code: number): DocCloseAction {
  switch (code) {
    case CLOSE.tokenExpired:
      return "refresh-token";
    case CLOSE.rateLimited:
      return "wait";
    case CLOSE.revoked:
      return "removed";
    case CLOSE.ended:
      return "deleted";
    default:
      // Another final code the server may add one day: wait and try, as for 4429.
      return code >= 4400 && code < 4500 ? "wait" : "provider";
  }
}

export type EventsCloseAction =
  | "refresh-token" // 4401
  | "removed" // 4403
  | "ended" // 4410 after session.ended: nothing live follows; stay, read-only
  | "check" // 4410 without a known end (deleted?), or an unknown 44xx: ask the REST API
  | "retry"; // everything else (1006, 1012 restart, 1013 overloaded, …): back off, reconnect

export function eventsCloseAction(code: number, known: { ended: boolean; deleted: boolean }): EventsCloseAction {
  if (code === CLOSE.tokenExpired) return "refresh-token";
  if (code === CLOSE.revoked) return "removed";
  if (code === CLOSE.ended) return known.ended && !known.deleted ? "ended" : "check";
  if (code >= 4400 && code < 4500) return "check";
  return "retry";
}
