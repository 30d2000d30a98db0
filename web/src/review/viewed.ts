// The "viewed" marks of a person on a review's files, kept in this browser (localStorage):
// one entry per person and review, holding the head SHA the marks are for and the paths
// marked. A new head starts over. No token or other secret is stored.
import { signal } from "@preact/signals";

const PREFIX = "tandem.review.viewed";

interface Stored {
  head: string;
  paths: string[];
}

export function viewedKey(userId: string, reviewId: string): string {
  return `${PREFIX}:${userId}:${reviewId}`;
}

function storage(): Storage | null {
  try {
    return typeof localStorage === "undefined" ? null : localStorage;
  } catch {
    return null; // storage disabled (a privacy setting): marks last for the page only
  }
}

/** Bumped on every change, so components reading marks render again. */
export const viewedVersion = signal(0);
const memory = new Map<string, Stored>();

function read(key: string): Stored | null {
  const remembered = memory.get(key);
  if (remembered !== undefined) return remembered;
  const raw = storage()?.getItem(key) ?? null;
  if (raw === null) return null;
  try {
    const value = JSON.parse(raw) as unknown;
    if (typeof value === "object" && value !== null && "head" in value && "paths" in value) {
      const { head, paths } = value;
      if (typeof head === "string" && Array.isArray(paths)) {
        const stored = { head, paths: paths.filter((p): p is string => typeof p === "string") };
        memory.set(key, stored);
        return stored;
      }
    }
  } catch {
    // Not ours, or damaged: start over.
  }
  return null;
}

/** The paths marked viewed at this head. */
export function viewedPaths(userId: string, reviewId: string, head: string): ReadonlySet<string> {
  // Reading the version subscribes a rendering component to every change of the marks.
  const stored = viewedVersion.value >= 0 ? read(viewedKey(userId, reviewId)) : null;
  return new Set(stored !== null && stored.head === head ? stored.paths : []);
}

export function setViewed(userId: string, reviewId: string, head: string, path: string, viewed: boolean): void {
  const key = viewedKey(userId, reviewId);
  const paths = new Set(viewedPaths(userId, reviewId, head));
  if (viewed) paths.add(path);
  else paths.delete(path);
  const stored: Stored = { head, paths: [...paths].sort() };
  memory.set(key, stored);
  try {
    if (paths.size === 0) storage()?.removeItem(key);
    else storage()?.setItem(key, JSON.stringify(stored));
  } catch {
    // Full or refused: the mark lasts for this page.
  }
  viewedVersion.value += 1;
}

/** Forgets what was read from storage (another tab changed it; tests). */
export function forgetViewed(): void {
  memory.clear();
  viewedVersion.value += 1;
}

if (typeof addEventListener === "function") {
  addEventListener("storage", (event) => {
    if (event.key === null || event.key.startsWith(PREFIX)) forgetViewed();
  });
}
