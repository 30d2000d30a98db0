// The member list: everyone's login and role; the owner changes roles and removes members.
import { useState } from "preact/hooks";
import type { ApiError, Member } from "../api/client";
import type { RoomController } from "./room";

function MemberRow({ member, room, owner }: { member: Member; room: RoomController; owner: boolean }) {
  const [busy, setBusy] = useState(false);
  const [confirming, setConfirming] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const login = member.user.github_login;
  const me = member.user.id === room.me.id;
  const manageable = owner && member.role !== "owner" && !room.ended.value;
  const errorId = `member-error-${member.user.id}`;

  async function run(action: () => Promise<void>) {
    setBusy(true);
    setError(null);
    try {
      await action();
      setConfirming(false);
    } catch (e) {
      setError((e as ApiError).message);
    } finally {
      setBusy(false);
    }
  }

  return (
    <li class="member">
      <span class="member-who">
        <img class="avatar" src={member.user.avatar_url} alt="" width={24} height={24} />
        <span class="member-login">{login}</span>
        {me && <span class="muted"> (you)</span>}
      </span>
      <span class="member-actions">
        {manageable ? (
          <select aria-label={`Role for ${login}`} value={member.role} disabled={busy}
                  aria-describedby={error !== null ? errorId : undefined}
                  onChange={(e) => {
                    const role = e.currentTarget.value === "viewer" ? "viewer" : "editor";
                    void run(() => room.setRole(member.user.id, role));
                  }}>
            <option value="editor">editor</option>
            <option value="viewer">viewer</option>
          </select>
        ) : (
          <span class={`badge role-${member.role}`}>{member.role}</span>
        )}
        {manageable && !confirming && (
          <button type="button" class="secondary small" disabled={busy} aria-label={`Remove ${login}`}
                  onClick={() => setConfirming(true)}>Remove</button>
        )}
      </span>
      {confirming && (
        <span class="confirm" role="group" aria-label={`Confirm removing ${login}`}>
          <span>Remove {login} from the session?</span>
          <button type="button" class="danger small" disabled={busy}
                  onClick={() => void run(() => room.removeMember(member.user.id))}>Yes, remove {login}</button>
          <button type="button" class="secondary small" disabled={busy} onClick={() => setConfirming(false)}>Cancel</button>
        </span>
      )}
      {error !== null && <span class="error" id={errorId} role="alert">{error}</span>}
    </li>
  );
}

const ORDER = { owner: 0, editor: 1, viewer: 2 } as const;

export function Members({ room }: { room: RoomController }) {
  const owner = room.role.value === "owner";
  const members = [...room.members.value].sort((a, b) =>
    ORDER[a.role] - ORDER[b.role] || a.user.github_login.localeCompare(b.user.github_login));
  return (
    <ul class="members">
      {members.map((m) => <MemberRow key={m.user.id} member={m} room={room} owner={owner} />)}
    </ul>
  );
}
