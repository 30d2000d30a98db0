// The room's header bar: title, language, role, connection status, and the actions — the
// owner's (invite, link invitation, rename, end) or a member's (leave) — with their forms.
import { useEffect, useRef, useState } from "preact/hooks";
import type { ApiError } from "../api/client";
import { languageLabel } from "../lib/languages";
import type { RoomController } from "./room";

export type Panel = "invite" | "link" | "rename" | "end" | "leave" | null;

function useFocusFirst<T extends HTMLElement>() {
  const ref = useRef<T>(null);
  useEffect(() => { ref.current?.focus(); }, []);
  return ref;
}

function InviteForm({ room, close }: { room: RoomController; close: () => void }) {
  const [login, setLogin] = useState("");
  const [role, setRole] = useState<"editor" | "viewer">("editor");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const first = useFocusFirst<HTMLInputElement>();

  async function submit(event: Event) {
    event.preventDefault();
    const who = login.trim().replace(/^@/, "");
    if (who === "") return;
    setBusy(true);
    setError(null);
    setDone(null);
    try {
      await room.invite(who, role);
      setDone(`Invited ${who} as ${role}. They will find the invitation on their sessions page.`);
      setLogin("");
    } catch (e) {
      setError((e as ApiError).forField("github_login") ?? (e as ApiError).message);
    } finally {
      setBusy(false);
    }
  }

  return (
    <form class="room-form" aria-label="Invite someone" onSubmit={(e) => void submit(e)}>
      <label>
        <span>GitHub login</span>
        <input ref={first} name="github_login" autoComplete="off" spellcheck={false} required value={login}
               aria-invalid={error !== null} aria-describedby={error !== null ? "invite-error" : undefined}
               onInput={(e) => setLogin(e.currentTarget.value)} />
      </label>
      <label>
        <span>Role</span>
        <select name="role" value={role} onChange={(e) => setRole(e.currentTarget.value === "viewer" ? "viewer" : "editor")}>
          <option value="editor">editor</option>
          <option value="viewer">viewer</option>
        </select>
      </label>
      <button type="submit" class="primary" disabled={busy || login.trim() === ""}>Send invitation</button>
      <button type="button" class="secondary" onClick={close}>Close</button>
      {error !== null && <p id="invite-error" class="error" role="alert">{error}</p>}
      {done !== null && <p class="success" role="status">{done}</p>}
    </form>
  );
}

function LinkPanel({ room, close }: { room: RoomController; close: () => void }) {
  const [role, setRole] = useState<"editor" | "viewer">("editor");
  const [link, setLink] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [copied, setCopied] = useState<string | null>(null);
  const field = useRef<HTMLInputElement>(null);

  async function create(as: "editor" | "viewer") {
    setBusy(true);
    setError(null);
    setCopied(null);
    try {
      setLink(await room.createLink(as));
    } catch (e) {
      setError((e as ApiError).message);
    } finally {
      setBusy(false);
    }
  }
  // One link per opening of the panel (the button opens it anew).
  useEffect(() => { void create(role); }, []);
  useEffect(() => { if (link !== null) field.current?.focus(); }, [link]);

  async function copy() {
    if (link === null) return;
    try {
      await navigator.clipboard.writeText(link);
      setCopied("Copied");
    } catch {
      field.current?.select();
      setCopied("Selected: press Ctrl+C (⌘C) to copy");
    }
  }

  return (
    <div class="room-form" role="group" aria-label="Invitation link">
      {link !== null && (
        <label class="grow">
          <span>Invitation link</span>
          <input ref={field} readOnly value={link} onFocus={(e) => e.currentTarget.select()} />
        </label>
      )}
      {link !== null && <button type="button" class="primary" onClick={() => void copy()}>Copy link</button>}
      <span class="copied" role="status" aria-live="polite">{copied ?? ""}</span>
      <label>
        <span>Link role</span>
        <select value={role} onChange={(e) => setRole(e.currentTarget.value === "viewer" ? "viewer" : "editor")}>
          <option value="editor">editor</option>
          <option value="viewer">viewer</option>
        </select>
      </label>
      <button type="button" class="secondary" disabled={busy} onClick={() => void create(role)}>
        {busy ? "Creating…" : "New link"}
      </button>
      <button type="button" class="secondary" onClick={close}>Close</button>
      <p class="muted hint">Anyone with the link joins as {role}; it works once and expires in 7 days.</p>
      {error !== null && <p class="error" role="alert">{error}</p>}
    </div>
  );
}

function RenameForm({ room, close }: { room: RoomController; close: () => void }) {
  const [title, setTitle] = useState(room.session.value?.title ?? "");
  // The version the person started from: a change by someone else meanwhile is a 412.
  const [version, setVersion] = useState(room.session.value?.version ?? 0);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const first = useFocusFirst<HTMLInputElement>();

  async function submit(event: Event) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await room.rename(title.trim(), version);
      close();
    } catch (e) {
      const problem = e as ApiError;
      setError(problem.forField("title") ?? problem.message);
      if (problem.status === 412) {
        setTitle(room.session.value?.title ?? title);
        setVersion(room.session.value?.version ?? version);
      }
    } finally {
      setBusy(false);
    }
  }

  return (
    <form class="room-form" aria-label="Rename session" onSubmit={(e) => void submit(e)}>
      <label class="grow">
        <span>Session title</span>
        <input ref={first} name="title" required maxLength={200} value={title}
               aria-invalid={error !== null} aria-describedby={error !== null ? "rename-error" : undefined}
               onInput={(e) => setTitle(e.currentTarget.value)} />
      </label>
      <button type="submit" class="primary" disabled={busy || title.trim() === ""}>Save title</button>
      <button type="button" class="secondary" onClick={close}>Cancel</button>
      {error !== null && <p id="rename-error" class="error" role="alert">{error}</p>}
    </form>
  );
}

function Confirm({ question, yes, run, close }: { question: string; yes: string; run: () => Promise<void>; close: () => void }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const first = useFocusFirst<HTMLButtonElement>();
  async function confirm() {
    setBusy(true);
    setError(null);
    try {
      await run();
      close();
    } catch (e) {
      setError((e as ApiError).message);
      setBusy(false);
    }
  }
  return (
    <div class="room-form" role="group" aria-label={question}>
      <p class="question">{question}</p>
      <button ref={first} type="button" class="danger" disabled={busy} onClick={() => void confirm()}>{yes}</button>
      <button type="button" class="secondary" disabled={busy} onClick={close}>Cancel</button>
      {error !== null && <p class="error" role="alert">{error}</p>}
    </div>
  );
}

export function RoomBar({ room, panel, setPanel, newLink }: {
  room: RoomController; panel: Panel; setPanel: (p: Panel) => void; newLink: () => void;
}) {
  const session = room.session.value;
  const role = room.role.value;
  const ended = room.ended.value;
  const status = room.status.value;
  const owner = role === "owner";
  const toggle = (p: Panel) => setPanel(panel === p ? null : p);
  const statusClass = status === "Connected" ? "ok" : status === "Offline" ? "down" : "waiting";

  return (
    <header class="room-bar">
      <div class="room-heading">
        <h1>{session?.title ?? "Session"}</h1>
        <span class="room-facts">
          {session !== null && <span class="badge">{languageLabel(session.language)}</span>}
          {role !== null && <span class={`badge role-${role}`} title="Your role">{role}</span>}
          {ended && <span class="badge ended">ended</span>}
        </span>
      </div>
      <span class={`connection ${statusClass}`}>
        <span class="dot" aria-hidden="true" />
        <span role="status" aria-label="Connection" aria-live="polite">{status}</span>
      </span>
      <div class="room-actions">
        {owner && !ended && (
          <>
            <button type="button" class="secondary" aria-expanded={panel === "invite"} onClick={() => toggle("invite")}>Invite</button>
            <button type="button" class="secondary" aria-expanded={panel === "link"} onClick={newLink}>Create invitation link</button>
            <button type="button" class="secondary" aria-expanded={panel === "rename"} onClick={() => toggle("rename")}>Rename session</button>
            <button type="button" class="danger-outline" aria-expanded={panel === "end"} onClick={() => toggle("end")}>End session</button>
          </>
        )}
        {!owner && role !== null && (
          <button type="button" class="secondary" aria-expanded={panel === "leave"} onClick={() => toggle("leave")}>Leave session</button>
        )}
      </div>
    </header>
  );
}

export function RoomPanel({ room, panel, close }: { room: RoomController; panel: Panel; close: () => void }) {
  const title = room.session.value?.title ?? "this session";
  switch (panel) {
    case "invite":
      return <InviteForm room={room} close={close} />;
    case "link":
      return <LinkPanel room={room} close={close} />;
    case "rename":
      return <RenameForm room={room} close={close} />;
    case "end":
      return <Confirm question={`End ${title}? The document and chat become read-only for everyone.`}
                      yes="Yes, end session" run={() => room.end()} close={close} />;
    case "leave":
      return <Confirm question={`Leave ${title}? You will need a new invitation to come back.`}
                      yes="Yes, leave session" run={() => room.leaveSession()} close={close} />;
    case null:
      return null;
  }
}
