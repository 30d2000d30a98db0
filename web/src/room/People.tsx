// Who is here now: one entry per person, however many tabs they have open, in the colour
// of their cursor (keyed on the GitHub login).
import { personColor } from "../lib/colors";
import type { RoomController } from "./room";

export function People({ room }: { room: RoomController }) {
  const people = room.people.value;
  return (
    <>
      {room.eventsDone.value && <p class="people-ended muted">Live presence ended with the session.</p>}
      <ul class="people" aria-live="polite">
        {people.map((p) => (
          <li key={p.id} class="person">
            {p.avatarUrl !== null
              ? <img class="avatar" src={p.avatarUrl} alt="" width={24} height={24} style={{ borderColor: personColor(p.login).color }} />
              : <span class="avatar placeholder" aria-hidden="true" style={{ background: personColor(p.login).color }} />}
            <span class="person-login">{p.login}</span>
            {p.me && <span class="muted"> (you)</span>}
            {p.connections > 1 && <span class="muted"> · {p.connections} tabs</span>}
          </li>
        ))}
      </ul>
    </>
  );
}
