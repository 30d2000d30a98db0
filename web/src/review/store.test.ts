import { afterEach, describe, expect, it, vi } from "vitest";
import { api } from "../api/client";
import type { ServerEvent } from "../room/events";
import { mergeThread, notOlder, ReviewStore } from "./store";
import type { Review, Thread } from "./types";

function fakeRoom() {
  const listeners = new Set<(e: ServerEvent) => void>();
  return {
    sessionId: "s1",
    listen(l: (e: ServerEvent) => void) { listeners.add(l); return () => listeners.delete(l); },
    emit(e: ServerEvent) { for (const l of listeners) l(e); },
  };
}

const review: Review = {
  id: "r1", session_id: "s1", repo: "tandem-demo/hello-api", pull_number: 1, ref: null,
  head_sha: "aaaaaaa1111", base_sha: "b", title: "Add users", state: "open",
  files: [{ path: "app/users.py", status: "modified", additions: 3, deletions: 1, previous_path: null }],
  verdict: null, verdicts: [], decision: null, github_review_id: null, published_at: null,
  created_by: "u1", created_at: "2025-01-01T00:00:00Z", updated_at: "2025-01-01T00:00:00Z",
};

const thread: Thread = {
  id: "t1", review_id: "r1", path: "app/users.py", line: 5, start_line: null, side: "RIGHT",
  commit_sha: "aaaaaaa1111", resolved: false, outdated: false, created_by: "u2",
  created_at: "2025-01-01T00:01:00Z", updated_at: "2025-01-01T00:01:00Z",
  comments: [{ id: "c1", thread_id: "t1", author_id: "u2", body: "Why?", created_at: "2025-01-01T00:01:00Z" }],
};

function event(type: string, seq: number, payload: Record<string, unknown>): ServerEvent {
  return { type, seq, session_id: "s1", at: "2025-01-01T00:05:00Z", ...payload };
}

afterEach(() => { vi.restoreAllMocks(); });

describe("ReviewStore", () => {
  it("adds a review created live once, and dedupes replayed events by seq", () => {
    const room = fakeRoom();
    const store = new ReviewStore(room);
    room.listen((e) => store.onEvent(e));
    room.emit(event("review.created", 5, { ...review, review_id: "r1" }));
    room.emit(event("review.created", 5, { ...review, review_id: "r1" }));
    expect(store.reviews.value.map((r) => r.id)).toEqual(["r1"]);
    expect(store.selected()?.title).toBe("Add users");
    // A replay of an older event changes nothing.
    room.emit(event("review.updated", 4, { ...review, title: "old", review_id: "r1" }));
    expect(store.review("r1")?.title).toBe("Add users");
  });

  it("threads, comments and resolves arrive live, each once", () => {
    const room = fakeRoom();
    const store = new ReviewStore(room);
    room.listen((e) => store.onEvent(e));
    room.emit(event("review.created", 1, { ...review, review_id: "r1" }));
    room.emit(event("review.thread.created", 2, { ...thread, review_id: "r1" }));
    store.applyThread(thread); // the POST's own answer, after the event
    expect(store.threads.value.get("r1")).toHaveLength(1);
    const reply = { id: "c2", thread_id: "t1", author_id: "u1", body: "<b>because</b>", created_at: "2025-01-01T00:02:00Z" };
    room.emit(event("review.comment.created", 3, { ...reply, review_id: "r1" }));
    store.applyComment("r1", reply);
    expect(store.threads.value.get("r1")?.[0]?.comments.map((c) => c.body)).toEqual(["Why?", "<b>because</b>"]);
    room.emit(event("review.updated", 4, {
      ...review, updated_at: "2025-01-01T00:03:00Z", review_id: "r1", change: "thread_resolved",
      thread: { ...thread, resolved: true, updated_at: "2025-01-01T00:03:00Z" },
    }));
    const t = store.threads.value.get("r1")?.[0];
    expect(t?.resolved).toBe(true);
    // Comments the resolve's copy of the thread lacks are kept.
    expect(t?.comments).toHaveLength(2);
  });

  it("a push holds the new head back until the person takes it", () => {
    const room = fakeRoom();
    const store = new ReviewStore(room);
    room.listen((e) => store.onEvent(e));
    vi.spyOn(api, "GET").mockResolvedValue({ data: { items: [], next_cursor: null }, response: new Response("{}") });
    room.emit(event("review.created", 1, { ...review, review_id: "r1" }));
    room.emit(event("review.thread.created", 2, { ...thread, review_id: "r1" }));
    room.emit(event("review.updated", 3, {
      ...review, head_sha: "ccccccc2222", updated_at: "2025-01-01T00:09:00Z", title: "Add users (v2)",
      files: [], review_id: "r1", change: "synchronize", outdated_thread_ids: ["t1"],
    }));
    expect(store.review("r1")?.head_sha).toBe("aaaaaaa1111");
    expect(store.review("r1")?.title).toBe("Add users (v2)");
    expect(store.review("r1")?.files).toHaveLength(1);
    expect(store.moved.value.get("r1")?.head_sha).toBe("ccccccc2222");
    expect(store.threads.value.get("r1")?.[0]?.outdated).toBe(true);
    const before = store.diffVersion.value;
    store.takeNewHead("r1");
    expect(store.review("r1")?.head_sha).toBe("ccccccc2222");
    expect(store.review("r1")?.files).toEqual([]);
    expect(store.moved.value.size).toBe(0);
    expect(store.diffVersion.value).toBe(before + 1);
  });

  it("a truncated event is read again over REST", () => {
    const room = fakeRoom();
    const store = new ReviewStore(room);
    room.listen((e) => store.onEvent(e));
    const get = vi.spyOn(api, "GET").mockResolvedValue({ data: review, response: new Response("{}") });
    room.emit(event("review.created", 1, { id: "r1", review_id: "r1", title: "x", files: [], truncated: true }));
    expect(get).toHaveBeenCalledWith("/api/v1/reviews/{id}", { params: { path: { id: "r1" } } });
  });

  it("knows verdicts from the review, or from what it saw", () => {
    const store = new ReviewStore(fakeRoom());
    const login = (id: string) => (id === "u2" ? "hubot" : null);
    expect(store.verdicts({ ...review, verdicts: [{ user: { id: "u2", github_login: "hubot", name: "", avatar_url: "", created_at: "2025-01-01T00:00:00Z" }, state: "approve", body: "ok", at: "2025-01-01T00:00:00Z" }] }, login))
      .toEqual([{ authorId: "u2", login: "hubot", state: "approve", body: "ok", at: "2025-01-01T00:00:00Z" }]);
    const older = { ...review, verdicts: null };
    store.applyVerdict({ id: "v1", review_id: "r1", author_id: "u2", state: "comment", body: "", created_at: "2025-01-01T00:00:00Z" });
    store.applyVerdict({ id: "v2", review_id: "r1", author_id: "u2", state: "request_changes", body: "fix", created_at: "2025-01-01T00:01:00Z" });
    expect(store.verdicts(older, login).map((v) => [v.login, v.state])).toEqual([["hubot", "request_changes"]]);
  });

  it("merges two copies of a thread by time, keeping every comment", () => {
    const newer = { ...thread, resolved: true, updated_at: "2025-01-01T00:09:00Z", comments: [] };
    expect(mergeThread(newer, thread)).toMatchObject({ resolved: true, comments: thread.comments });
    expect(notOlder({ updated_at: "2025-01-01T00:00:00.5Z" }, { updated_at: "2025-01-01T00:00:00Z" })).toBe(true);
  });
});
