// Who is signed in, and their access token.
//
// The access token lives in this module's memory only and is refreshed before it expires.
// The refresh token never reaches script: the gateway keeps it in the `tandem_refresh`
// cookie (HttpOnly, SameSite=Strict, Path=/api/v1/auth), so a reload signs the person back
// in by calling /auth/refresh with that cookie. Nothing is written to localStorage.
//
// Refresh tokens rotate, and a spent one presented again revokes the whole family: two tabs
// rotating the one cookie at the same moment would sign the person out everywhere. So a
// rotation holds the `tandem-refresh` Web Lock, and the tab that rotated hands the new
// access token to the others over a BroadcastChannel (memory to memory), which then need
// not rotate at all. Web Locks exist only in secure contexts (https, localhost); elsewhere
// a random pause before rotating lets one tab's handed-over token reach the rest first.
import { signal } from "@preact/signals";
import { ApiError, errorFrom, networkError, type User } from "../api/client";

export type AuthStatus = "unknown" | "signed-in" | "signed-out";

export const authStatus = signal<AuthStatus>("unknown");
export const currentUser = signal<User | null>(null);
/** Why the person was signed out, or why signing in is taking long; null when all is well. */
export const authProblem = signal<string | null>(null);

interface TokenAnswer {
  access_token: string;
  expires_in: number;
  user: User;
}

type Broadcast =
  | { type: "signed-out" }
  | { type: "signed-in" }
  | { type: "token"; answer: TokenAnswer; expiresAt: number };

let accessToken: string | null = null;
let expiresAt = 0; // ms since epoch
let refreshTimer: ReturnType<typeof setTimeout> | undefined;
let refreshing: Promise<string | null> | null = null;
/** Bumped by every sign-out: an answer that was in flight meanwhile is not adopted. */
let generation = 0;
const listeners = new Set<(token: string) => void>();

/** Refresh this long before the token expires (and sockets reconnect with the new one). */
export const REFRESH_AHEAD_MS = 60_000;
/** A token with less life than this left is not worth adopting from another tab. */
const MIN_LIFE_MS = REFRESH_AHEAD_MS + 15_000;
const RETURN_KEY = "tandem.returnTo";
const channel = typeof BroadcastChannel === "undefined" ? null : new BroadcastChannel("tandem-auth");

/** When to refresh a token that lives `expiresIn` seconds (at least 5 s from now). */
export function refreshDelay(expiresIn: number): number {
  const lifetime = expiresIn * 1000;
  return Math.max(5_000, lifetime - REFRESH_AHEAD_MS, lifetime * 0.8);
}

/** How long to wait before retrying after the `attempt`-th failure to reach the server. */
export function retryDelay(attempt: number): number {
  return Math.min(15_000, 1_000 * 2 ** Math.max(0, attempt - 1));
}

function adopt(answer: TokenAnswer, until: number = Date.now() + answer.expires_in * 1000): string {
  accessToken = answer.access_token;
  expiresAt = until;
  currentUser.value = answer.user;
  authStatus.value = "signed-in";
  authProblem.value = null;
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => void refresh(), Math.max(5_000, until - Date.now() - REFRESH_AHEAD_MS));
  for (const listener of listeners) listener(answer.access_token);
  return answer.access_token;
}

function drop(problem: string | null): void {
  generation += 1;
  accessToken = null;
  expiresAt = 0;
  clearTimeout(refreshTimer);
  currentUser.value = null;
  authStatus.value = "signed-out";
  authProblem.value = problem;
}

function fresh(): boolean {
  return accessToken !== null && expiresAt - Date.now() > MIN_LIFE_MS;
}

async function post(path: string): Promise<Response> {
  try {
    return await fetch(path, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: "{}",
    });
  } catch (cause) {
    throw networkError(cause);
  }
}

/** Runs `work` while no other tab of this origin runs its own (see the top of the file). */
async function exclusive<T>(work: () => Promise<T>): Promise<T> {
  if ("locks" in navigator) return navigator.locks.request("tandem-refresh", work);
  await new Promise((resolve) => setTimeout(resolve, Math.random() * 600));
  return work();
}

type Rotation = { kind: "token"; token: string } | { kind: "answer"; response: Response };

/** A new access token from the refresh cookie; null when there is no valid one. */
export function refresh(): Promise<string | null> {
  refreshing ??= (async () => {
    const started = generation;
    try {
      const rotation = await exclusive<Rotation>(async () => {
        // Another tab may have rotated while we waited, and handed us its token.
        if (fresh() && accessToken !== null) return { kind: "token", token: accessToken };
        return { kind: "answer", response: await post("/api/v1/auth/refresh") };
      });
      if (started !== generation) return null; // signed out meanwhile: adopt nothing
      if (rotation.kind === "token") return rotation.token;
      const { response } = rotation;
      if (response.ok) {
        const answer = (await response.json()) as TokenAnswer;
        const until = Date.now() + answer.expires_in * 1000;
        const broadcast: Broadcast = { type: "token", answer, expiresAt: until };
        channel?.postMessage(broadcast);
        return adopt(answer, until);
      }
      if (response.status === 401) {
        drop(authStatus.value === "signed-in" ? "Your sign-in has ended; sign in again." : null);
        return null;
      }
      throw await errorFrom(response);
    } catch (error) {
      // A network failure or an outage: keep what we have and try again shortly.
      clearTimeout(refreshTimer);
      refreshTimer = setTimeout(() => void refresh(), 5_000);
      if (authStatus.value === "unknown") throw error;
      return accessToken;
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

/** The access token, refreshed first when it is about to expire. */
export async function getToken(): Promise<string | null> {
  if (accessToken !== null && Date.now() < expiresAt - 10_000) return accessToken;
  if (authStatus.value === "signed-out") return null;
  return refresh();
}

/** Called with every new access token (sockets use it to reconnect before 4401). */
export function onToken(listener: (token: string) => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** Whether the gateway says a refresh cookie was set and not cleared since (the
 * `tandem_signed_in` flag holds no secret; the refresh cookie itself is HttpOnly). */
export function mayBeSignedIn(cookies: string = document.cookie): boolean {
  return cookies.split(";").some((c) => c.trim() === "tandem_signed_in=1");
}

/** On start: signed in again from the refresh cookie, or signed out (without asking the
 * server when there is no cookie: a 401 would only be noise in the console). While the
 * server cannot be reached the person stays "signing in" and we keep trying: an outage is
 * not a reason to send them through GitHub again. */
export async function restore(): Promise<void> {
  // A path saved for an abandoned sign-in (it may hold an invitation token) goes now.
  sessionStorage.removeItem(RETURN_KEY);
  if (!mayBeSignedIn()) {
    drop(null);
    return;
  }
  for (let attempt = 1; authStatus.value === "unknown"; attempt++) {
    try {
      await refresh();
      return;
    } catch (error) {
      const wait = retryDelay(attempt);
      authProblem.value = `Could not reach Tandem (${(error as ApiError).message}); trying again in ${String(Math.round(wait / 1000))} s.`;
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }
}

/** Off to GitHub; `/auth/callback` brings the person back to `returnTo`. */
export function signIn(returnTo: string = location.pathname + location.search): void {
  sessionStorage.setItem(RETURN_KEY, returnTo.startsWith("/") && !returnTo.startsWith("//") ? returnTo : "/");
  const redirect = `${location.origin}/auth/callback`;
  location.assign(`/api/v1/auth/github/login?redirect_uri=${encodeURIComponent(redirect)}`);
}

/** Finishes sign-in on `/auth/callback`; answers where to go next. */
export async function completeSignIn(query: URLSearchParams): Promise<string> {
  const target = sessionStorage.getItem(RETURN_KEY) ?? "/";
  sessionStorage.removeItem(RETURN_KEY);
  const params = new URLSearchParams({
    code: query.get("code") ?? "",
    state: query.get("state") ?? "",
    transport: "cookie",
  });
  if (query.has("error")) params.set("error", query.get("error") ?? "");
  let response: Response;
  try {
    response = await fetch(`/api/v1/auth/github/callback?${params.toString()}`, { credentials: "same-origin" });
  } catch (cause) {
    throw networkError(cause);
  }
  if (!response.ok) throw await errorFrom(response);
  adopt((await response.json()) as TokenAnswer);
  const broadcast: Broadcast = { type: "signed-in" };
  channel?.postMessage(broadcast);
  return target;
}

/** Signs out here and in every other tab; the refresh family is revoked. Throws (and the
 * person stays signed in) when the server could not be told: a tab that only looked signed
 * out would sign them back in on the next reload. */
export async function signOut(): Promise<void> {
  const response = await exclusive(() => post("/api/v1/auth/logout"));
  if (!response.ok) throw await errorFrom(response);
  drop(null);
  const broadcast: Broadcast = { type: "signed-out" };
  channel?.postMessage(broadcast);
}

channel?.addEventListener("message", (event: MessageEvent<Broadcast>) => {
  const message = event.data;
  if (message.type === "signed-out" && authStatus.value !== "signed-out") drop("You signed out in another tab.");
  if (message.type === "signed-in" && authStatus.value !== "signed-in") void refresh().catch(() => undefined);
  if (message.type === "token" && authStatus.value !== "signed-out" && message.expiresAt > expiresAt) {
    adopt(message.answer, message.expiresAt);
  }
});
