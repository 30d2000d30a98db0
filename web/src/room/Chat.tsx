// The chat panel: history and live messages in a `log`, and the composer (Enter sends,
// Shift+Enter starts a new line).
import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import { when } from "../lib/format";
import type { ChatEntry } from "./chat";
import type { RoomController } from "./room";

function Line({ entry, room }: { entry: ChatEntry; room: RoomController }) {
  if (entry.kind === "sent") {
    const m = entry.message;
    const mine = m.author.id === room.me.id;
    return (
      <li class={mine ? "chat-line mine" : "chat-line"}>
        <span class="chat-meta">
          <strong class="chat-author">{m.author.github_login ?? room.profiles.value.get(m.author.id)?.github_login ?? "someone"}</strong>
          <time dateTime={m.created_at} title={new Date(m.created_at).toLocaleString()}>{when(m.created_at)}</time>
        </span>
        <span class="chat-body">{m.body}</span>
      </li>
    );
  }
  const m = entry.message;
  const errorId = `chat-error-${m.clientId}`;
  return (
    <li class="chat-line mine pending" aria-busy={m.error === null || m.retrying ? "true" : "false"}
        aria-describedby={m.error !== null ? errorId : undefined}>
      <span class="chat-meta">
        <strong class="chat-author">{m.author.github_login}</strong>
        <span class="chat-state">{m.error === null ? "sending…" : m.retrying ? "retrying…" : "not sent"}</span>
      </span>
      <span class="chat-body">{m.body}</span>
      {m.error !== null && (
        <span class="chat-error" id={errorId} role="alert">
          {m.error}
          {!m.retrying && (
            <>
              {" "}<button type="button" class="link" onClick={() => room.resend(m.clientId)}>Retry</button>
              {" "}<button type="button" class="link" onClick={() => room.discard(m.clientId)}>Discard</button>
            </>
          )}
        </span>
      )}
    </li>
  );
}

export function Chat({ room }: { room: RoomController }) {
  const version = room.chatVersion.value; // a new value on every chat change
  const entries = room.chat.entries();
  const history = room.history.value;
  const ended = room.ended.value;
  const [draft, setDraft] = useState("");
  const log = useRef<HTMLDivElement>(null);
  const stick = useRef(true);

  // Follow new messages while the person is at the bottom of the log.
  useLayoutEffect(() => {
    const el = log.current;
    if (el !== null && stick.current) el.scrollTop = el.scrollHeight;
  }, [version]);
  useEffect(() => {
    const el = log.current;
    if (el === null) return;
    const onScroll = () => { stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40; };
    el.addEventListener("scroll", onScroll, { passive: true });
    return () => el.removeEventListener("scroll", onScroll);
  }, []);

  function send() {
    if (draft.trim() === "" || ended) return;
    stick.current = true;
    room.sendChat(draft);
    setDraft("");
  }

  return (
    <div class="chat">
      {history.floor > 0 && history.state !== "error" && (
        <button type="button" class="link earlier" disabled={history.state === "loading"}
                onClick={() => void room.loadEarlier()}>Load earlier messages</button>
      )}
      {history.state === "error" && (
        <p class="error" role="alert">Could not load the chat history: {history.error}{" "}
          <button type="button" class="link" onClick={() => room.retryHistory()}>Try again</button></p>
      )}
      <div class="chat-log" role="log" aria-label="Chat" aria-live="polite" aria-relevant="additions text"
           aria-busy={history.state === "loading" ? "true" : "false"} ref={log} tabIndex={0}>
        {entries.length === 0 && history.state === "done" && <p class="muted chat-empty">No messages yet.</p>}
        <ol>{entries.map((entry) => <Line key={entry.key} entry={entry} room={room} />)}</ol>
      </div>
      {ended ? (
        <p class="muted chat-closed">The chat is read-only now that the session is over.</p>
      ) : (
        <form class="chat-form" onSubmit={(e) => { e.preventDefault(); send(); }}>
          <textarea aria-label="Message" placeholder="Message the room" title="Enter sends; Shift+Enter starts a new line"
                    rows={2} maxLength={4000} value={draft}
                    onInput={(e) => setDraft(e.currentTarget.value)}
                    onKeyDown={(e) => {
                      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
                        e.preventDefault();
                        send();
                      }
                    }} />
          <button type="submit" class="primary" disabled={draft.trim() === ""}>Send</button>
        </form>
      )}
    </div>
  );
}
