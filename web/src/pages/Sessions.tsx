import { useEffect, useState } from "preact/hooks";
import { api, ApiError, call, newId, type Invitation, type Session } from "../api/client";
import { when } from "../lib/format";
import { LANGUAGES, languageLabel } from "../lib/languages";
import { notice } from "../lib/notice";
import { navigate } from "../lib/router";

const PAGE = 20;

function CreateSession() {
  const [title, setTitle] = useState("");
  const [language, setLanguage] = useState("plaintext");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  // One Idempotency-Key per request body: a retry of the same body replays the first answer,
  // an edited body is a new request (the same key with another body would be a 422).
  const [key, setKey] = useState(() => ({ body: "", id: newId() }));

  async function submit(event: Event) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    const body = { title: title.trim(), language };
    const signature = JSON.stringify(body);
    const idempotency = key.body === signature ? key : { body: signature, id: newId() };
    setKey(idempotency);
    try {
      const session = await call(api.POST("/api/v1/sessions", {
        body,
        params: { header: { "Idempotency-Key": idempotency.id } as never },
      }));
      setKey({ body: "", id: newId() });
      navigate(`/sessions/${session.id}`);
    } catch (e) {
      setError(e as ApiError);
    } finally {
      setBusy(false);
    }
  }

  const titleError = error?.forField("title");
  return (
    <form class="create" onSubmit={(e) => void submit(e)} aria-labelledby="create-heading">
      <h2 id="create-heading">New session</h2>
      <div class="row">
        <label>
          <span>Session title</span>
          <input name="title" required maxLength={200} value={title} placeholder="Pairing on the parser"
                 aria-invalid={titleError !== undefined} aria-describedby={titleError !== undefined ? "title-error" : undefined}
                 onInput={(e) => setTitle(e.currentTarget.value)} />
        </label>
        <label>
          <span>Language</span>
          <select name="language" value={language} onChange={(e) => setLanguage(e.currentTarget.value)}>
            {LANGUAGES.map((l) => <option key={l.value} value={l.value}>{l.label}</option>)}
          </select>
        </label>
        <button type="submit" class="primary" disabled={busy || title.trim() === ""}>Create session</button>
      </div>
      {titleError !== undefined && <p id="title-error" role="alert" class="error">{titleError}</p>}
      {error !== null && titleError === undefined && <p role="alert" class="error">{error.message}</p>}
    </form>
  );
}

function Invitations() {
  const [items, setItems] = useState<Invitation[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState<string | null>(null);

  async function load() {
    try {
      const page = await call(api.GET("/api/v1/invitations", {}));
      setItems(page.items.filter((i) => i.status === "pending"));
    } catch (e) {
      setError((e as ApiError).message);
    }
  }
  useEffect(() => { void load(); }, []);

  async function answer(invitation: Invitation, accept: boolean) {
    setBusy(invitation.id);
    setError(null);
    try {
      if (accept) {
        const accepted = await call(api.POST("/api/v1/invitations/{id}/accept",
          { params: { path: { id: invitation.id } } }));
        navigate(`/sessions/${accepted.session.id}`);
        return;
      }
      await call(api.POST("/api/v1/invitations/{id}/decline",
        { params: { path: { id: invitation.id } } }));
      await load();
    } catch (e) {
      setError((e as ApiError).message);
      await load();
    } finally {
      setBusy(null);
    }
  }

  if (items === null && error === null) return null;
  return (
    <section class="invitations" aria-label="Invitations">
      <h2>Invitations</h2>
      {error !== null && <p role="alert" class="error">{error}</p>}
      {items?.length === 0 && <p class="muted">No pending invitations.</p>}
      <ul>
        {items?.map((inv) => (
          <li key={inv.id}>
            <span><strong>{inv.session_title}</strong> as {inv.role}
              {" "}from {inv.invited_by.github_login}</span>
            <span class="actions">
              <button type="button" class="primary" disabled={busy !== null} onClick={() => void answer(inv, true)}
                      aria-label="Accept" aria-description={`Join ${inv.session_title}`}>Accept</button>
              <button type="button" class="secondary" disabled={busy !== null} onClick={() => void answer(inv, false)}
                      aria-label="Decline">Decline</button>
            </span>
          </li>
        ))}
      </ul>
    </section>
  );
}

function SessionList() {
  const [items, setItems] = useState<Session[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [loaded, setLoaded] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function more(from: string | null) {
    setBusy(true);
    try {
      const page = await call(api.GET("/api/v1/sessions", {
        params: { query: from === null ? { limit: PAGE } : { limit: PAGE, cursor: from } },
      }));
      setItems((old) => (from === null ? page.items : [...old, ...page.items]));
      setCursor(page.next_cursor ?? null);
      setLoaded(true);
      setError(null);
    } catch (e) {
      setError((e as ApiError).message);
    } finally {
      setBusy(false);
    }
  }
  useEffect(() => { void more(null); }, []);

  return (
    <section class="sessions" aria-label="Your sessions">
      {error !== null && <p role="alert" class="error">{error} <button type="button" onClick={() => void more(null)}>Try again</button></p>}
      {loaded && items.length === 0 && <p class="muted">No sessions yet: create one above, or accept an invitation.</p>}
      <ul class="session-list">
        {items.map((s) => (
          <li key={s.id}>
            <a href={`/sessions/${s.id}`}>{s.title}</a>
            <span class="meta">
              <span class={`badge role-${s.role}`}>{s.role}</span>
              <span>{languageLabel(s.language)}</span>
              {s.status === "ended" && <span class="badge ended">ended</span>}
              <span>{when(s.updated_at)}</span>
            </span>
          </li>
        ))}
      </ul>
      {cursor !== null && (
        <button type="button" class="secondary" disabled={busy} onClick={() => void more(cursor)}>Load more sessions</button>
      )}
    </section>
  );
}

export function Sessions() {
  const message = notice.value;
  return (
    <div class="page">
      <h1>Sessions</h1>
      {message !== null && (
        <p role="alert" class="notice">{message} <button type="button" class="link" onClick={() => { notice.value = null; }}>Dismiss</button></p>
      )}
      <CreateSession />
      <Invitations />
      <SessionList />
    </div>
  );
}
