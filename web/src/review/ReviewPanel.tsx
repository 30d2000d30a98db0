// The "Review" side-panel section: import a pull request, the session's reviews, the chosen
// review's files (with a "viewed" mark per person), everyone's verdicts, finishing a review
// and publishing it to GitHub.
import { useEffect, useRef, useState } from "preact/hooks";
import type { ApiError } from "../api/client";
import { when } from "../lib/format";
import type { RoomController } from "../room/room";
import { canWriteReview, loginOf, NewCommits } from "./ReviewMain";
import { type PublishResult, reviewStore, shortSha } from "./store";
import type { Review, VerdictState } from "./types";
import { setViewed, viewedPaths } from "./viewed";
import "./review.css";

const REPO = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})\/[A-Za-z0-9._-]{1,100}$/;

/** The import form's problem with its fields, before asking the API (null: fine). */
export function importProblem(repo: string, number: string): { field: "repo" | "number"; message: string } | null {
  if (!REPO.test(repo.trim())) return { field: "repo", message: "Give the repository as owner/name, e.g. tandem-demo/hello-api." };
  const n = Number(number.trim());
  if (!/^\d+$/.test(number.trim()) || !Number.isSafeInteger(n) || n < 1) {
    return { field: "number", message: "Give the pull request's number, e.g. 1." };
  }
  return null;
}

/** An API error in words for a person importing or publishing. */
export function githubProblem(error: ApiError): string {
  if (error.status === 409 && error.code === "failed_precondition" && /sign in/i.test(error.message)) {
    return `${error.message} — GitHub no longer accepts your sign-in: sign out and sign in with GitHub again.`;
  }
  if (error.status === 503 && error.retryAfter !== null && Number.isFinite(error.retryAfter)) {
    return `${error.message} — try again in ${String(Math.max(1, Math.round(error.retryAfter)))} s.`;
  }
  return error.message;
}

function ImportForm({ room, close }: { room: RoomController; close: () => void }) {
  const store = reviewStore(room);
  const [repo, setRepo] = useState("");
  const [number, setNumber] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<{ field: "repo" | "number" | null; message: string } | null>(null);
  const first = useRef<HTMLInputElement>(null);
  useEffect(() => { first.current?.focus(); }, []);

  async function submit() {
    const problem = importProblem(repo, number);
    if (problem !== null) { setError(problem); return; }
    setBusy(true);
    setError(null);
    try {
      await store.importPull(repo.trim(), Number(number.trim()));
      close();
    } catch (e) {
      const apiError = e as ApiError;
      const field = apiError.forField("repo") !== undefined ? "repo" : apiError.forField("pull_number") !== undefined ? "number" : null;
      setError({ field, message: githubProblem(apiError) });
    } finally {
      setBusy(false);
    }
  }

  return (
    <form class="review-form import-form" aria-label="Import a pull request" onSubmit={(e) => { e.preventDefault(); void submit(); }}>
      <label>
        Repository
        <input ref={first} type="text" name="repo" value={repo} placeholder="owner/name" autoComplete="off"
               spellcheck={false} autoCapitalize="off" aria-invalid={error?.field === "repo" ? "true" : undefined}
               aria-describedby={error !== null ? "review-import-error" : undefined}
               onInput={(e) => setRepo(e.currentTarget.value)} />
      </label>
      <label>
        Pull request number
        <input type="text" name="pull_number" inputMode="numeric" value={number} placeholder="1" autoComplete="off"
               aria-invalid={error?.field === "number" ? "true" : undefined}
               aria-describedby={error !== null ? "review-import-error" : undefined}
               onInput={(e) => setNumber(e.currentTarget.value)} />
      </label>
      <div class="review-form-buttons">
        <button type="submit" class="primary small" disabled={busy}>{busy ? "Importing…" : "Import"}</button>
        <button type="button" class="small" onClick={close}>Cancel</button>
      </div>
      {error !== null && <p class="error" id="review-import-error" role="alert">{error.message}</p>}
    </form>
  );
}

const VERDICT_TEXT: Record<VerdictState, string> = {
  approve: "approved",
  request_changes: "requested changes",
  comment: "commented",
};

function Verdicts({ room, review }: { room: RoomController; review: Review }) {
  const store = reviewStore(room);
  const verdicts = store.verdicts(review, (id) => loginOf(room, id));
  if (verdicts.length === 0) return <p class="muted review-none">No verdicts yet.</p>;
  return (
    <ul class="review-verdicts" aria-label="Verdicts">
      {verdicts.map((v) => (
        <li key={v.authorId} class={`verdict ${v.state}`}>
          <span class="verdict-head">
            <strong>{v.login ?? "someone"}</strong> {VERDICT_TEXT[v.state]}{" "}
            <time class="muted" dateTime={v.at} title={new Date(v.at).toLocaleString()}>{when(v.at)}</time>
          </span>
          {v.body !== "" && <span class="verdict-body">{v.body}</span>}
        </li>
      ))}
    </ul>
  );
}

function FinishForm({ room, review, close }: { room: RoomController; review: Review; close: () => void }) {
  const store = reviewStore(room);
  const [state, setState] = useState<VerdictState>("comment");
  const [body, setBody] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const first = useRef<HTMLInputElement>(null);
  useEffect(() => { first.current?.focus(); }, []);
  const options: [VerdictState, string][] = [["comment", "Comment"], ["approve", "Approve"], ["request_changes", "Request changes"]];

  async function submit() {
    setBusy(true);
    setError(null);
    try {
      await store.submitVerdict(review.id, state, body);
      close();
    } catch (e) {
      setError((e as ApiError).message);
    } finally {
      setBusy(false);
    }
  }

  return (
    <form class="review-form finish-form" aria-label="Finish your review" onSubmit={(e) => { e.preventDefault(); void submit(); }}>
      <fieldset>
        <legend>Your verdict</legend>
        {options.map(([value, label], i) => (
          <label key={value} class="radio">
            <input ref={i === 0 ? first : undefined} type="radio" name={`verdict-${review.id}`} value={value}
                   checked={state === value} onChange={() => setState(value)} />
            {label}
          </label>
        ))}
      </fieldset>
      <label class="block">
        Review summary
        <textarea rows={3} maxLength={65536} value={body} onInput={(e) => setBody(e.currentTarget.value)} />
      </label>
      <div class="review-form-buttons">
        <button type="submit" class="primary small" disabled={busy}>Submit review</button>
        <button type="button" class="small" onClick={close}>Cancel</button>
      </div>
      {error !== null && <p class="error" role="alert">{error}</p>}
    </form>
  );
}

function Publish({ room, review }: { room: RoomController; review: Review }) {
  const store = reviewStore(room);
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<PublishResult | null>(null);
  const [error, setError] = useState<string | null>(null);

  async function publish() {
    setBusy(true);
    setError(null);
    try {
      setResult(await store.publish(review.id));
    } catch (e) {
      const apiError = e as ApiError;
      setResult(null);
      setError(apiError.status === 409 && /already|in progress|being published/i.test(apiError.message)
        ? `Not published: ${apiError.message}.`
        : apiError.status === 0 ? apiError.message : `GitHub did not take the review: ${githubProblem(apiError)}`);
    } finally {
      setBusy(false);
    }
  }

  // Only an https address is a link (GitHub's, or the stand-in's over http on this machine):
  // the address comes from GitHub's answer, and a javascript: one must never be clickable.
  const url = safeLink(result?.published.html_url ?? null);
  return (
    <div class="review-publish">
      <button type="button" class="small" disabled={busy} onClick={() => void publish()}>
        {busy ? "Publishing…" : "Publish to GitHub"}
      </button>
      {review.state === "published" && result === null && error === null && review.published_at !== null && (
        <p class="muted">Published to GitHub {when(review.published_at)}.</p>
      )}
      {result !== null && (
        <p class="success" role="status">
          {result.already
            ? `This review was already published to GitHub (${when(result.published.published_at)}); it is not posted twice.`
            : "Published to GitHub."}{" "}
          {url !== null && <a href={url} target="_blank" rel="noopener noreferrer">View the review on GitHub</a>}
        </p>
      )}
      {error !== null && <p class="error" role="alert">{error}</p>}
    </div>
  );
}

function Files({ room, review }: { room: RoomController; review: Review }) {
  const store = reviewStore(room);
  const viewed = viewedPaths(room.me.id, review.id, review.head_sha);
  const view = room.mainView.value;
  const threads = store.threads.value.get(review.id) ?? [];
  const open = new Map<string, number>();
  for (const t of threads) if (!t.resolved) open.set(t.path, (open.get(t.path) ?? 0) + 1);
  useEffect(() => { void store.loadThreads(review.id); }, [review.id]);
  return (
    <section class="review-files" aria-label="Files">
      <h3 class="review-sub">Files <span class="muted">({viewed.size}/{review.files.length} viewed)</span></h3>
      {review.files.length === 0 && <p class="muted review-none">No changed files.</p>}
      <ul>
        {review.files.map((f) => {
          const current = view.kind === "file" && view.reviewId === review.id && view.path === f.path;
          const count = open.get(f.path) ?? 0;
          return (
            <li key={f.path} class={`review-file${current ? " current" : ""}${viewed.has(f.path) ? " viewed" : ""}`}>
              <button type="button" class="review-file-path" aria-current={current ? "true" : undefined}
                      title={f.previous_path !== null ? `${f.path} (was ${f.previous_path})` : f.path}
                      onClick={() => { room.mainView.value = { kind: "file", reviewId: review.id, path: f.path }; }}>
                {f.path}
              </button>
              <span class="review-file-facts">
                <span class={`badge status-${f.status}`}>{f.status}</span>
                <span class="adds" aria-label={`${String(f.additions)} additions`}>+{f.additions}</span>
                <span class="dels" aria-label={`${String(f.deletions)} deletions`}>−{f.deletions}</span>
                {count > 0 && <span class="threads-count">{count} open {count === 1 ? "thread" : "threads"}</span>}
                <label class="viewed-box">
                  <input type="checkbox" checked={viewed.has(f.path)} aria-label={`Viewed ${f.path}`}
                         onChange={(e) => setViewed(room.me.id, review.id, review.head_sha, f.path, e.currentTarget.checked)} />
                  <span aria-hidden="true">Viewed</span>
                </label>
              </span>
            </li>
          );
        })}
      </ul>
    </section>
  );
}

function ReviewDetail({ room, review }: { room: RoomController; review: Review }) {
  const [finishing, setFinishing] = useState(false);
  const finishButton = useRef<HTMLButtonElement>(null);
  const canWrite = canWriteReview(room);
  const owner = room.role.value === "owner" && !room.ended.value;
  useEffect(() => { setFinishing(false); }, [review.id]);
  return (
    <div class="review-detail">
      <NewCommits room={room} reviewId={review.id} />
      <Files room={room} review={review} />
      <section class="review-decide" aria-label="Verdicts and publishing">
        <h3 class="review-sub">Verdicts</h3>
        <Verdicts room={room} review={review} />
        {canWrite && (finishing
          ? <FinishForm room={room} review={review} close={() => { setFinishing(false); requestAnimationFrame(() => finishButton.current?.focus()); }} />
          : <button type="button" class="small" ref={finishButton} aria-expanded="false" onClick={() => setFinishing(true)}>Finish review</button>)}
        {owner && review.pull_number !== null && <Publish key={review.id} room={room} review={review} />}
      </section>
    </div>
  );
}

export function ReviewPanel({ room }: { room: RoomController }) {
  const store = reviewStore(room);
  const [importing, setImporting] = useState(false);
  const importButton = useRef<HTMLButtonElement>(null);
  const reviews = store.reviews.value;
  const list = store.list.value;
  const selected = store.selected();
  const canWrite = canWriteReview(room);

  return (
    <div class="review-panel">
      {canWrite && (importing
        ? <ImportForm room={room} close={() => { setImporting(false); requestAnimationFrame(() => importButton.current?.focus()); }} />
        : <button type="button" class="small" ref={importButton} aria-expanded="false" onClick={() => setImporting(true)}>Import pull request</button>)}
      {list.state === "loading" && reviews.length === 0 && <p class="muted review-none" role="status">Loading the reviews…</p>}
      {list.state === "error" && (
        <p class="error" role="alert">Could not load the reviews: {list.error}{" "}
          <button type="button" class="link" onClick={() => void store.loadList()}>Try again</button></p>
      )}
      {list.state === "done" && reviews.length === 0 && (
        <p class="muted review-none">No pull request in this session yet{canWrite ? "." : "; an editor can import one."}</p>
      )}
      {reviews.length > 0 && (
        <ul class="review-list" aria-label="Reviews">
          {reviews.map((r) => (
            <li key={r.id}>
              <button type="button" class={`review-item${r.id === selected?.id ? " selected" : ""}`}
                      aria-pressed={r.id === selected?.id} onClick={() => { store.selectedId.value = r.id; }}>
                <span class="review-title">{r.title}</span>
                <span class="review-facts">
                  <span>{r.repo}{r.pull_number !== null ? ` #${String(r.pull_number)}` : r.ref !== null ? ` @${r.ref}` : ""}</span>
                  <code title={r.head_sha}>{shortSha(r.head_sha)}</code>
                  <span class={`badge state-${r.state}`}>{r.state}</span>
                  {store.moved.value.has(r.id) && <span class="badge warn">new commits</span>}
                </span>
              </button>
            </li>
          ))}
        </ul>
      )}
      {selected !== undefined && <ReviewDetail key={selected.id} room={room} review={selected} />}
    </div>
  );
}

/** `url` when it is an http(s) address, else null. */
export function safeLink(url: string | null): string | null {
  if (url === null) return null;
  try {
    const parsed = new URL(url);
    return parsed.protocol === "https:" || parsed.protocol === "http:" ? parsed.href : null;
  } catch {
    return null;
  }
}
