// The `Connection` status: one of three words, from the sockets' state and the browser's.

export type ConnectionText = "Connected" | "Reconnecting…" | "Offline";

/** After this long without both sockets up, "Reconnecting…" becomes "Offline". */
export const OFFLINE_AFTER_MS = 30_000;

export interface LinkState {
  /** navigator.onLine */
  online: boolean;
  /** The events socket is open and welcomed (or the session ended and it has said all). */
  eventsUp: boolean;
  /** The document socket is open and synced. */
  docUp: boolean;
  /** Since when not both were up (ms since epoch); null while they are. */
  downSince: number | null;
  now: number;
}

export function connectionText(state: LinkState, offlineAfter: number = OFFLINE_AFTER_MS): ConnectionText {
  if (!state.online) return "Offline";
  if (state.eventsUp && state.docUp) return "Connected";
  if (state.downSince !== null && state.now - state.downSince >= offlineAfter) return "Offline";
  return "Reconnecting…";
}
