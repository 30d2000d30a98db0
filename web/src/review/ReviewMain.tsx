// The room's main area while a review file is open: its diff with threads and AI findings,
// the way back to the shared document, the whole file on demand, and word of new commits.
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import type { ApiError } from "../api/client";
import type { RoomController } from "../room/room";
import { Diff, type Composer } from "./Diff";
import { findingsKey, findingsSlot } from "./findings";
import { reviewStore, shortSha } from "./store";
import type { ThreadActions } from "./Thread";
import type { FileDiff } from "./types";
import "./review.css";

export function canWriteReview(room: Pick<RoomController, "role" | "ended">): boolean {
  const role = room.role.value;
  return (role === "owner" || role === "editor") && !room.ended.value;
}

export function loginOf(room: Pick<RoomController, "profiles" | "me">, userId: string): string {
  if (userId === room.me.id) return room.me.github_login;
  const login = room.profiles.value.get(userId)?.github_login;
  return login !== undefined && login !== "" ? login : "someone";
}

export function NewCommits({ room, reviewId }: { room: RoomController; reviewId: string }) {
  const store = reviewStore(room);
  const newer = store.moved.value.get(reviewId);
  if (newer === undefined) return null;
  return (
    <p class="review-moved" role="status">
      <span>The pull request has new commits (now at <code>{shortSha(newer.head_sha)}</code>).</span>{" "}
      <button type="button" class="small primary" onClick={() => store.takeNewHead(reviewId)}>Show the new diff</button>
    </p>
  );
}

export function ReviewMain({ room }: { room: RoomController }) {
  const view = room.mainView.value;
  const store = reviewStore(room);
  const reviewId = view.kind === "file" ? view.reviewId : null;
  const path = view.kind === "file" ? view.path : null;
  const review = reviewId === null ? undefined : store.review(reviewId);
  const version = store.diffVersion.value;
  const head = review?.head_sha;
  const [file, setFile] = useState<{ key: string; file: FileDiff | null; error: string | null } | null>(null);
  const [whole, setWhole] = useState(false);
  const top = useRef<HTMLDivElement>(null);
  const canWrite = canWriteReview(room);
  const key = `${reviewId ?? ""}\n${path ?? ""}\n${head ?? ""}\n${String(version)}`;

  // A review this page has not listed yet (a link, another panel): read it.
  useEffect(() => {
    if (reviewId !== null && review === undefined && store.list.value.state !== "loading") {
      void store.loadReview(reviewId).catch(() => undefined);
    }
  }, [reviewId, review === undefined, store.list.value.state]);

  useEffect(() => {
    if (reviewId === null) return;
    void store.loadThreads(reviewId);
  }, [reviewId]);

  useEffect(() => {
    if (reviewId === null || path === null || head === undefined) return;
    let live = true;
    setFile((f) => (f?.key === key ? f : { key, file: null, error: null }));
    store.file(reviewId, path)
      .then((loaded) => { if (live) setFile({ key, file: loaded, error: null }); })
      .catch((e: unknown) => { if (live) setFile({ key, file: null, error: (e as ApiError).message }); });
    return () => { live = false; };
  }, [key]);

  useEffect(() => { setWhole(false); }, [reviewId, path]);

  // On a phone the panels are below the main area: bring the diff into view.
  useEffect(() => {
    if (path !== null && typeof matchMedia === "function" && matchMedia("(max-width: 900px)").matches) {
      top.current?.scrollIntoView({ block: "start" });
    }
  }, [reviewId, path]);

  const allThreads = reviewId === null ? undefined : store.threads.value.get(reviewId);
  const threads = useMemo(() => (allThreads ?? []).filter((t) => t.path === path), [allThreads, path]);
  const findings = reviewId === null || path === null ? undefined : findingsSlot.value.get(findingsKey(reviewId, path));
  const profiles = room.profiles.value;
  const actions = useMemo<ThreadActions>(() => ({
    canWrite,
    login: (id) => loginOf(room, id),
    reply: (threadId, body) => store.reply(reviewId ?? "", threadId, body),
    setResolved: (threadId, resolved) => store.setResolved(reviewId ?? "", threadId, resolved),
  }), [canWrite, reviewId, profiles]);
  const addThread = useMemo(() => (c: Composer, body: string) => store.addThread(reviewId ?? "", {
    path: path ?? "", line: c.line, side: c.side, start_line: c.start, body,
  }), [reviewId, path]);

  if (view.kind !== "file" || reviewId === null || path === null) return null;
  const summary = review?.files.find((f) => f.path === path);
  const loaded = file?.key === key ? file : null;
  const threadsState = store.threadsState.value.get(reviewId);

  return (
    <div class="review-view" ref={top}>
      <div class="review-main-bar">
        <button type="button" class="small" onClick={() => {
          room.mainView.value = { kind: "document" };
          requestAnimationFrame(() => room.editorView.value?.focus());
        }}>Back to the document</button>
        <h2 class="review-main-path" title={path}>{path}</h2>
        {summary !== undefined && (
          <span class="review-file-facts">
            <span class={`badge status-${summary.status}`}>{summary.status}</span>
            <span class="adds" aria-label={`${String(summary.additions)} additions`}>+{summary.additions}</span>
            <span class="dels" aria-label={`${String(summary.deletions)} deletions`}>−{summary.deletions}</span>
          </span>
        )}
        <button type="button" class="small" aria-pressed={whole}
                disabled={loaded?.file?.content === null || loaded?.file === undefined}
                onClick={() => setWhole(!whole)}>Show whole file</button>
      </div>
      <NewCommits room={room} reviewId={reviewId} />
      {review !== undefined && (
        <p class="review-main-note muted">
          {review.title} · {review.repo}{review.pull_number !== null ? ` #${String(review.pull_number)}` : ""} at <code>{shortSha(review.head_sha)}</code>
          {!canWrite && " · read-only"}
        </p>
      )}
      {threadsState?.state === "error" && (
        <p class="error" role="alert">Could not load the threads: {threadsState.error}{" "}
          <button type="button" class="link" onClick={() => void store.loadThreads(reviewId, true)}>Try again</button></p>
      )}
      {loaded === null || (loaded.file === null && loaded.error === null)
        ? <p class="review-loading muted" role="status">Loading the diff…</p>
        : loaded.file === null
          ? <p class="error" role="alert">Could not load {path}: {loaded.error}</p>
          : <Diff key={`${view.reviewId}\n${view.path}\n${loaded.file.sha}`} file={loaded.file} whole={whole} canWrite={canWrite} threads={threads}
                  findings={findings ?? []} actions={actions} addThread={addThread} focus={view.line !== undefined ? view : undefined} />}
    </div>
  );
}
