// Who is here: the events socket's presence entries (one per open connection), folded into
// one entry per person, with their login and avatar from the member list.

export interface PresenceEntry {
  connection_id: string;
  user_id: string;
  status?: string | null;
  cursor?: unknown;
  since?: string | null;
}

export interface Profile {
  id: string;
  github_login: string;
  avatar_url: string;
}

export interface Person {
  id: string;
  login: string;
  avatarUrl: string | null;
  /** Open connections (tabs) of this person. */
  connections: number;
  me: boolean;
}

/** One entry per person present (yourself always included, first; then by login). */
export function peopleHere(entries: Iterable<PresenceEntry>, profiles: ReadonlyMap<string, Profile>,
                           me: Profile): Person[] {
  const counts = new Map<string, number>();
  for (const entry of entries) counts.set(entry.user_id, (counts.get(entry.user_id) ?? 0) + 1);
  if (!counts.has(me.id)) counts.set(me.id, 1);
  const people: Person[] = [];
  for (const [id, connections] of counts) {
    const profile = id === me.id ? me : profiles.get(id);
    people.push({
      id,
      login: profile?.github_login ?? "someone",
      avatarUrl: profile?.avatar_url ?? null,
      connections,
      me: id === me.id,
    });
  }
  return people.sort((a, b) => (a.me !== b.me ? (a.me ? -1 : 1) : a.login.localeCompare(b.login)));
}

/** The presence map after an event (`presence.joined` / `updated` / `left`). */
export function applyPresence(current: ReadonlyMap<string, PresenceEntry>, type: string,
                              entry: PresenceEntry): Map<string, PresenceEntry> {
  const next = new Map(current);
  if (type === "presence.left") next.delete(entry.connection_id);
  else next.set(entry.connection_id, entry);
  return next;
}

/** Whether someone present has no profile yet (a member list to fetch again). */
export function missingProfiles(entries: Iterable<PresenceEntry>, profiles: ReadonlyMap<string, Profile>): boolean {
  for (const entry of entries) if (!profiles.has(entry.user_id)) return true;
  return false;
}
