// A thread between the diff's lines: its comments (bodies as text, never HTML), a reply box,
// resolve and unresolve. And the box that opens a thread on a line or a range of lines.
import { useEffect, useRef, useState } from "preact/hooks";
import type { ApiError } from "../api/client";
import { when } from "../lib/format";
import type { Side, Thread } from "./types";

export interface ThreadActions {
  canWrite: boolean;
  login: (userId: string) => string;
  reply: (threadId: string, body: string) => Promise<unknown>;
  setResolved: (threadId: string, resolved: boolean) => Promise<unknown>;
}

function lines(thread: Pick<Thread, "line" | "start_line">): string {
  return thread.start_line !== null && thread.start_line !== thread.line
    ? `lines ${String(thread.start_line)}–${String(thread.line)}`
    : `line ${String(thread.line)}`;
}

export function threadLabel(thread: Pick<Thread, "line" | "start_line" | "side">): string {
  return `Thread on ${thread.side === "LEFT" ? "old " : ""}${lines(thread)}`;
}

/** A text box and its send button ("Comment" / "Add comment"); Ctrl/⌘+Enter sends. */
export function CommentForm({ onSubmit, onCancel, autoFocus = true, hint }: {
  onSubmit: (body: string) => Promise<unknown>;
  onCancel: () => void;
  autoFocus?: boolean;
  hint?: string;
}) {
  const [body, setBody] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const box = useRef<HTMLTextAreaElement>(null);
  useEffect(() => { if (autoFocus) box.current?.focus(); }, []);

  async function send() {
    if (body.trim() === "" || busy) return;
    setBusy(true);
    setError(null);
    try {
      await onSubmit(body);
      setBody("");
      onCancel();
    } catch (e) {
      setError((e as ApiError).message);
    } finally {
      setBusy(false);
    }
  }

  return (
    <form class="comment-form" onSubmit={(e) => { e.preventDefault(); void send(); }}>
      {hint !== undefined && <p class="comment-hint muted">{hint}</p>}
      <textarea ref={box} aria-label="Comment" rows={3} maxLength={65536} value={body}
                placeholder="Leave a comment" title="Ctrl+Enter adds the comment; Escape cancels"
                aria-invalid={error !== null ? "true" : undefined}
                onInput={(e) => setBody(e.currentTarget.value)}
                onKeyDown={(e) => {
                  if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); void send(); }
                  if (e.key === "Escape") { e.preventDefault(); onCancel(); }
                }} />
      {error !== null && <p class="error" role="alert">{error}</p>}
      <div class="comment-buttons">
        <button type="submit" class="primary small" disabled={busy || body.trim() === ""}>Add comment</button>
        <button type="button" class="small" onClick={onCancel}>Cancel</button>
      </div>
    </form>
  );
}

export function ThreadView({ thread, actions }: { thread: Thread; actions: ThreadActions }) {
  const [replying, setReplying] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const replyButton = useRef<HTMLButtonElement>(null);

  async function toggle() {
    setBusy(true);
    setError(null);
    try {
      await actions.setResolved(thread.id, !thread.resolved);
    } catch (e) {
      setError((e as ApiError).message);
    } finally {
      setBusy(false);
    }
  }

  return (
    <div class={`thread${thread.resolved ? " resolved" : ""}${thread.outdated ? " outdated" : ""}`}
         role="group" aria-label={threadLabel(thread)} data-thread-id={thread.id}>
      <p class="thread-head">
        <span class="thread-where">{threadLabel(thread)}</span>
        {thread.outdated && <span class="badge warn" title="A later push changed or removed these lines">Outdated</span>}
        {thread.resolved && <span class="badge ok">Resolved</span>}
      </p>
      <ol class="thread-comments">
        {thread.comments.map((c) => (
          <li key={c.id} class="thread-comment">
            <span class="thread-meta">
              <strong class="thread-author">{actions.login(c.author_id)}</strong>
              <time dateTime={c.created_at} title={new Date(c.created_at).toLocaleString()}>{when(c.created_at)}</time>
            </span>
            <span class="thread-body">{c.body}</span>
          </li>
        ))}
      </ol>
      {error !== null && <p class="error" role="alert">{error}</p>}
      {actions.canWrite && (replying ? (
        <CommentForm onSubmit={(body) => actions.reply(thread.id, body)}
                     onCancel={() => { setReplying(false); requestAnimationFrame(() => replyButton.current?.focus()); }} />
      ) : (
        <div class="thread-buttons">
          <button type="button" class="small" ref={replyButton} onClick={() => setReplying(true)}>Reply</button>
          <button type="button" class="small" disabled={busy} onClick={() => void toggle()}>
            {thread.resolved ? "Unresolve" : "Resolve"}
          </button>
        </div>
      ))}
    </div>
  );
}

/** Says which line(s) a new thread is about. */
export function composerHint(side: Side, start: number | null, line: number): string {
  const which = side === "LEFT" ? "old " : "";
  return start === null ? `New thread on ${which}line ${String(line)}` : `New thread on ${which}lines ${String(start)}–${String(line)}`;
}
