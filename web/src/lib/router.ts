// A small history router: the app has four routes, so a dependency would be more code.
import { signal } from "@preact/signals";

export const currentPath = signal(location.pathname);
export const currentQuery = signal(new URLSearchParams(location.search));

export function navigate(to: string, options: { replace?: boolean } = {}): void {
  const url = new URL(to, location.origin);
  if (options.replace === true) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  currentPath.value = url.pathname;
  currentQuery.value = url.searchParams;
  window.scrollTo(0, 0);
}

addEventListener("popstate", () => {
  currentPath.value = location.pathname;
  currentQuery.value = new URLSearchParams(location.search);
});

export type Route =
  | { name: "home" }
  | { name: "callback" }
  | { name: "room"; sessionId: string }
  | { name: "invitation"; token: string }
  | { name: "not-found" };

/** Which page a path is. */
export function match(path: string): Route {
  if (path === "/" || path === "") return { name: "home" };
  if (path === "/auth/callback") return { name: "callback" };
  const room = /^\/sessions\/([^/]+)\/?$/.exec(path);
  if (room?.[1] !== undefined) return { name: "room", sessionId: decodeURIComponent(room[1]) };
  const invitation = /^\/invitations\/([^/]+)\/?$/.exec(path);
  if (invitation?.[1] !== undefined) return { name: "invitation", token: decodeURIComponent(invitation[1]) };
  return { name: "not-found" };
}

/** A click on an in-app link navigates without a reload (modified clicks keep their meaning). */
export function onLinkClick(event: MouseEvent): void {
  if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const anchor = (event.target as Element | null)?.closest("a");
  if (anchor === null || anchor === undefined || anchor.target !== "" || anchor.origin !== location.origin) return;
  event.preventDefault();
  navigate(anchor.pathname + anchor.search + anchor.hash);
}
