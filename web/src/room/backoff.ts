// Reconnect delays: capped exponential backoff with jitter, so a gateway restart is not met
// by every client reconnecting in the same millisecond.

export interface Backoff {
  /** Delay of the first retry, in ms. */
  base: number;
  /** No delay is longer than this, in ms. */
  cap: number;
}

export const EVENTS_BACKOFF: Backoff = { base: 400, cap: 10_000 };

/** How long to wait before attempt `attempt` (0 = the first retry): "equal jitter", so the
 * delay is between half and all of the capped exponential step. */
export function backoffDelay(attempt: number, backoff: Backoff = EVENTS_BACKOFF,
                             random: () => number = Math.random): number {
  const step = Math.min(backoff.cap, backoff.base * 2 ** Math.max(0, Math.min(attempt, 30)));
  return Math.round(step / 2 + (random() * step) / 2);
}
