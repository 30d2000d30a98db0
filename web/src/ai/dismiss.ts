// Findings a person dismissed, per person and job, in localStorage (only finding indices:
// no token, no text). Dismissal is this person's own for now (shared dismissal is issue 22).

const PREFIX = "tandem.ai.dismissed";

export function dismissedKey(userId: string, jobId: string): string {
  return `${PREFIX}:${userId}:${jobId}`;
}

function store(): Storage | null {
  try {
    return typeof localStorage === "undefined" ? null : localStorage;
  } catch {
    return null; // storage disabled: dismissals last for the page
  }
}

/** The dismissed finding indices of a job. */
export function loadDismissed(userId: string, jobId: string, storage: Storage | null = store()): Set<number> {
  const raw = storage?.getItem(dismissedKey(userId, jobId)) ?? null;
  if (raw === null) return new Set();
  try {
    const parsed: unknown = JSON.parse(raw);
    if (!Array.isArray(parsed)) return new Set();
    return new Set(parsed.filter((n): n is number => Number.isInteger(n) && (n as number) >= 0));
  } catch {
    return new Set();
  }
}

export function saveDismissed(userId: string, jobId: string, indices: ReadonlySet<number>,
                              storage: Storage | null = store()): void {
  if (storage === null) return;
  const key = dismissedKey(userId, jobId);
  try {
    if (indices.size === 0) storage.removeItem(key);
    else storage.setItem(key, JSON.stringify([...indices].sort((a, b) => a - b)));
  } catch {
    // Full or disabled: the dismissal holds for this page.
  }
}
