// The session room: the shared document, who is here, chat and members, all live.
import { useEffect, useMemo, useState } from "preact/hooks";
import { currentUser } from "../auth/session";
import { type Panel, RoomBar, RoomPanel } from "./Actions";
import { Chat } from "./Chat";
import { Editor } from "./Editor";
import { AiPanel } from "../ai/AiPanel";
import { ReviewMain, ReviewPanel } from "../review";
import { Members } from "./Members";
import { People } from "./People";
import { RoomController } from "./room";
import "./room.css";

/** A side-panel section; collapsible, so later panels (review, AI findings) stack in too. */
function Section({ name, count, children, grow = false }: {
  name: string; count?: number; children: preact.ComponentChildren; grow?: boolean;
}) {
  const [open, setOpen] = useState(true);
  const id = `panel-${name.toLowerCase().replace(/\W+/g, "-")}`;
  return (
    <section class={`panel${grow ? " grow" : ""}${open ? "" : " closed"}`} aria-label={name}>
      <h2 class="panel-title">
        <button type="button" class="panel-toggle" aria-expanded={open} aria-controls={id} onClick={() => setOpen(!open)}>
          <span class="chevron" aria-hidden="true" />
          {name}
          {count !== undefined && <span class="count" aria-hidden="true">{count}</span>}
        </button>
      </h2>
      <div class="panel-body" id={id} hidden={!open}>{children}</div>
    </section>
  );
}

function NotFound() {
  return (
    <section class="page narrow">
      <h1>Session not found</h1>
      <p>This session does not exist, or you are not one of its members.</p>
      <p><a href="/">Back to your sessions</a></p>
    </section>
  );
}

function Live({ room }: { room: RoomController }) {
  const [panel, setPanel] = useState<Panel>(null);
  const [linkKey, setLinkKey] = useState(0);
  const session = room.session.value;
  const link = room.docLink.value;
  const problem = room.docProblem.value;
  const live = room.liveProblem.value;
  const title = session?.title;
  const fileView = room.mainView.value.kind === "file";

  useEffect(() => {
    if (title === undefined) return;
    const before = document.title;
    document.title = `${title} · Tandem`;
    return () => { document.title = before; };
  }, [title]);

  // A panel that no longer applies (the session ended, the role changed) closes.
  const owner = room.role.value === "owner";
  const shown: Panel = room.ended.value && panel !== null && panel !== "leave" ? null
    : owner && panel === "leave" ? null
    : !owner && panel !== null && panel !== "leave" ? null
    : panel;

  return (
    <div class="room">
      <RoomBar room={room} panel={shown} setPanel={setPanel}
               newLink={() => { setLinkKey(linkKey + 1); setPanel("link"); }} />
      {shown !== null && (
        <div class="room-drawer">
          <RoomPanel key={shown === "link" ? `link-${linkKey}` : shown} room={room} panel={shown} close={() => setPanel(null)} />
        </div>
      )}
      {room.ended.value && <p class="room-banner ended">This session has ended. The document and chat are read-only.</p>}
      {problem !== null && (
        <p class="room-banner warn" role="alert">
          {problem}{" "}
          <button type="button" class="link" onClick={() => room.dismissDocProblem()}>Dismiss</button>
        </p>
      )}
      {live !== null && <p class="room-banner info" role="status">{live}</p>}
      <div class="room-body">
        {/* The editor stays mounted under a review's diff: its view, scroll and diagnostics
            are there again on the way back. */}
        {fileView && <section class="room-main review-main" aria-label="Pull request file"><ReviewMain room={room} /></section>}
        <section class="room-main" aria-label="Document" hidden={fileView}>
          {link !== null
            ? <Editor link={link} readOnly={room.readOnly.value} language={session?.language ?? "plaintext"}
                      onView={(view) => { room.editorView.value = view; }} />
            : <div class="room-editor placeholder" />}
          {!room.docLoaded.value && <p class="editor-loading muted" aria-hidden="true">Loading the document…</p>}
          {room.readOnly.value && !room.ended.value && (
            <p class="editor-note muted">{room.role.value === "viewer" ? "You are a viewer: you can read and chat, not edit." : "Read-only for now."}</p>
          )}
        </section>
        <aside class="room-side" aria-label="Session panels">
          <Section name="People" count={room.people.value.length}><People room={room} /></Section>
          {/* Chat right after People: it is what a live room talks in, and stays above the
              fold when a pull request's panels are long (the side panel scrolls). */}
          <Section name="Chat" grow><Chat room={room} /></Section>
          <Section name="Review"><ReviewPanel room={room} /></Section>
          <Section name="AI"><AiPanel room={room} /></Section>
          <Section name="Members" count={room.members.value.length}><Members room={room} /></Section>
        </aside>
      </div>
    </div>
  );
}

export function Room({ sessionId }: { sessionId: string }) {
  const user = currentUser.value;
  const userId = user?.id;
  const [attempt, setAttempt] = useState(0);
  // One controller per session, person and attempt (a token refresh must not rebuild it).
  const room = useMemo(() => (user === null ? null : new RoomController(sessionId, user)),
    [sessionId, userId, attempt]);
  useEffect(() => {
    if (room === null) return;
    void room.start();
    return () => room.stop();
  }, [room]);

  if (room === null) return null;
  const error = room.loadError.value;
  if (error !== null) {
    if (error.status === 404) return <NotFound />;
    return (
      <section class="page narrow">
        <h1>Could not open the session</h1>
        <p class="error" role="alert">{error.message}</p>
        <p>
          <button type="button" class="primary" onClick={() => setAttempt(attempt + 1)}>Try again</button>{" "}
          <a href="/">Back to your sessions</a>
        </p>
      </section>
    );
  }
  if (room.session.value === null) return <p class="loading" role="status">Opening the session…</p>;
  return <Live room={room} />;
}
