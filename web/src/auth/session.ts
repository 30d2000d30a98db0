// Who is signed in, and their access token.
//
// The access token lives in this module's memory only and is refreshed before it expires.
// The refresh token never reaches script: the gateway keeps it in the `tandem_refresh`
// cookie (HttpOnly, SameSite=Strict, Path=/api/v1/auth), so a reload signs the person back
// in by calling /auth/refresh with that cookie. Nothing is written to localStorage.
import { signal } from "@preact/signals";
import { errorFrom, networkError, type ApiError, type User } from "../api/client";

export type AuthStatus = "unknown" | "signed-in" | "signed-out";

export const authStatus = signal<AuthStatus>("unknown");
export const currentUser = signal<User | null>(null);
/** Why the person was signed out, when it was not their own doing. */
export const authProblem = signal<string | null>(null);

interface TokenAnswer {
  access_token: string;
  expires_in: number;
  user: User;
}

let accessToken: string | null = null;
let expiresAt = 0; // ms since epoch
let refreshTimer: ReturnType<typeof setTimeout> | undefined;
let refreshing: Promise<string | null> | null = null;
const listeners = new Set<(token: string) => void>();

/** Refresh this long before the token expires (and sockets reconnect with the new one). */
export const REFRESH_AHEAD_MS = 60_000;
const RETURN_KEY = "tandem.returnTo";
const channel = typeof BroadcastChannel === "undefined" ? null : new BroadcastChannel("tandem-auth");

/** When to refresh a token that lives `expiresIn` seconds (at least 5 s from now). */
export function refreshDelay(expiresIn: number): number {
  const lifetime = expiresIn * 1000;
  return Math.max(5_000, lifetime - REFRESH_AHEAD_MS, lifetime * 0.8);
}

function adopt(answer: TokenAnswer): string {
  accessToken = answer.access_token;
  expiresAt = Date.now() + answer.expires_in * 1000;
  currentUser.value = answer.user;
  authStatus.value = "signed-in";
  authProblem.value = null;
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => void refresh(), refreshDelay(answer.expires_in));
  for (const listener of listeners) listener(answer.access_token);
  return answer.access_token;
}

function drop(problem: string | null): void {
  accessToken = null;
  expiresAt = 0;
  clearTimeout(refreshTimer);
  currentUser.value = null;
  authStatus.value = "signed-out";
  authProblem.value = problem;
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

/** Rotates the refresh cookie once, across every tab (two tabs spending one refresh token
 * at once would look like token theft and revoke the whole family). */
async function rotate(): Promise<Response> {
  if ("locks" in navigator) {
    return navigator.locks.request("tandem-refresh", () => post("/api/v1/auth/refresh"));
  }
  return post("/api/v1/auth/refresh");
}

/** A new access token from the refresh cookie; null when there is no valid one. */
export function refresh(): Promise<string | null> {
  refreshing ??= (async () => {
    try {
      const response = await rotate();
      if (response.ok) return adopt((await response.json()) as TokenAnswer);
      if (response.status === 401) {
        drop(authStatus.value === "signed-in" ? "Your sign-in has ended; sign in again." : null);
        return null;
      }
      throw await errorFrom(response);
    } catch (error) {
      // A network failure or outage: keep what we have and try again shortly.
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
 * server when there is no cookie: a 401 would only be noise in the console). */
export async function restore(): Promise<void> {
  if (!mayBeSignedIn()) {
    drop(null);
    return;
  }
  try {
    await refresh();
  } catch (error) {
    drop(`Could not reach Tandem to sign you in: ${(error as ApiError).message}`);
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
  channel?.postMessage({ type: "signed-in" });
  const target = sessionStorage.getItem(RETURN_KEY) ?? "/";
  sessionStorage.removeItem(RETURN_KEY);
  return target;
}

/** Signs out here and in every other tab; the refresh family is revoked. */
export async function signOut(): Promise<void> {
  try {
    await post("/api/v1/auth/logout");
  } finally {
    drop(null);
    channel?.postMessage({ type: "signed-out" });
  }
}

channel?.addEventListener("message", (event: MessageEvent<{ type: string }>) => {
  if (event.data.type === "signed-out" && authStatus.value === "signed-in") drop("You signed out in another tab.");
  if (event.data.type === "signed-in" && authStatus.value !== "signed-in") void refresh();
});
