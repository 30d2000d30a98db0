// The session's reviews, kept live: the list (REST, then `review.*` events), each review's
// threads, the verdicts known, and whether a pull request's head moved since the person
// loaded its diff. Components read the signals and call the methods.
import { batch, signal } from "@preact/signals";
import { api, ApiError, call } from "../api/client";
import type { ServerEvent } from "../room/events";
import type {
  Comment, CurrentVerdict, FileDiff, Published, Review, Side, Thread, Verdict, VerdictState,
} from "./types";

/** What the store needs of the room (RoomController has all of it). */
export interface ReviewRoom {
  readonly sessionId: string;
  listen(listener: (event: ServerEvent) => void): () => void;
}

export type LoadState = { state: "loading" | "done" | "error"; error: string | null };

export interface NewThread {
  path: string;
  line: number;
  side: Side;
  start_line?: number | null;
  body: string;
}

export interface PublishResult {
  published: Published;
  /** It had been published before this click (the API answers the earlier result). */
  already: boolean;
}

/** A verdict as the store knows it, by author (the review answer's `verdicts`, or the
 * verdicts seen live and the latest one, when the answer has no `verdicts`). */
export interface KnownVerdict {
  authorId: string;
  login: string | null;
  state: VerdictState;
  body: string;
  at: string;
}

const PAGE = 100;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Whether `incoming` is not older than `current` (RFC 3339 UTC strings compare by time). */
export function notOlder(incoming: { updated_at: string }, current: { updated_at: string }): boolean {
  const a = Date.parse(incoming.updated_at);
  const b = Date.parse(current.updated_at);
  if (Number.isNaN(a) || Number.isNaN(b)) return true;
  return a >= b;
}

function byCreated<T extends { created_at: string; id: string }>(a: T, b: T): number {
  const d = Date.parse(a.created_at) - Date.parse(b.created_at);
  return d !== 0 && !Number.isNaN(d) ? d : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** Comments of both, each once, oldest first. */
export function mergeComments(a: readonly Comment[], b: readonly Comment[]): Comment[] {
  const byId = new Map<string, Comment>();
  for (const c of a) byId.set(c.id, c);
  for (const c of b) byId.set(c.id, c);
  return [...byId.values()].sort(byCreated);
}

/** A thread as known after `incoming` arrived: the newer fields, every comment once. */
export function mergeThread(current: Thread | undefined, incoming: Thread): Thread {
  if (current === undefined) return { ...incoming, comments: mergeComments([], incoming.comments) };
  const base = notOlder(incoming, current) ? incoming : current;
  return { ...base, comments: mergeComments(current.comments, incoming.comments) };
}

/** Threads with `incoming` merged in, oldest first. */
export function upsertThread(threads: readonly Thread[], incoming: Thread): Thread[] {
  const index = threads.findIndex((t) => t.id === incoming.id);
  if (index < 0) return [...threads, mergeThread(undefined, incoming)].sort(byCreated);
  const next = threads.slice();
  next[index] = mergeThread(threads[index], incoming);
  return next;
}

/** The fields of a review that change without its head moving (state, verdicts, publishing). */
function withoutHead(shown: Review, newer: Review): Review {
  return {
    ...shown,
    title: newer.title,
    state: newer.state,
    verdict: newer.verdict,
    verdicts: newer.verdicts,
    decision: newer.decision,
    github_review_id: newer.github_review_id,
    published_at: newer.published_at,
    updated_at: newer.updated_at,
  };
}

export function shortSha(sha: string): string {
  return sha.slice(0, 7);
}

export class ReviewStore {
  /** The session's reviews, newest first, as the person's view shows them (a review whose
   * head moved keeps its old files until the person takes the new diff). */
  readonly reviews = signal<readonly Review[]>([]);
  readonly list = signal<LoadState>({ state: "loading", error: null });
  /** The review the panel shows (its files, verdicts, publishing). */
  readonly selectedId = signal<string | null>(null);
  /** Threads per review, oldest first. */
  readonly threads = signal<ReadonlyMap<string, readonly Thread[]>>(new Map());
  readonly threadsState = signal<ReadonlyMap<string, LoadState>>(new Map());
  /** Reviews whose pull request has new commits: the newer review, not yet taken. */
  readonly moved = signal<ReadonlyMap<string, Review>>(new Map());
  /** Verdicts seen, per review, by author (when the review answer has no `verdicts`). */
  readonly seenVerdicts = signal<ReadonlyMap<string, ReadonlyMap<string, Verdict>>>(new Map());
  /** Bumped when a review's diff should be read again (the person took a new head). */
  readonly diffVersion = signal(0);

  private unsubscribe: (() => void) | null = null;
  private maxSeq = -1;
  private welcomes = 0;
  private stopped = false;
  private readonly files = new Map<string, Promise<FileDiff>>();
  /** The latest threads request per review: an older answer that lands later is dropped. */
  private readonly threadLoads = new Map<string, number>();

  constructor(private readonly room: ReviewRoom) {}

  start(): void {
    if (this.unsubscribe !== null) return;
    this.stopped = false;
    this.unsubscribe = this.room.listen((event) => this.onEvent(event));
    void this.loadList();
  }

  stop(): void {
    this.stopped = true;
    this.unsubscribe?.();
    this.unsubscribe = null;
  }

  review(id: string): Review | undefined {
    return this.reviews.value.find((r) => r.id === id);
  }

  selected(): Review | undefined {
    const id = this.selectedId.value;
    return id === null ? this.reviews.value[0] : this.review(id) ?? this.reviews.value[0];
  }

  // --- loading ----------------------------------------------------------------------------

  async loadList(): Promise<void> {
    if (this.list.value.state !== "done") this.list.value = { state: "loading", error: null };
    try {
      const page = await call(api.GET("/api/v1/sessions/{id}/reviews", {
        params: { path: { id: this.room.sessionId }, query: { limit: PAGE } },
      }));
      if (this.stopped) return;
      batch(() => {
        const chosen = this.selectedId.value;
        // Oldest first, so each lands at the top as if it had just been created.
        for (const review of [...page.items].reverse()) this.adoptReview(review);
        // The newest is shown first; one imported later does not take its place.
        const newest = this.reviews.value[0];
        if (chosen === null && newest !== undefined) this.selectedId.value = newest.id;
        this.list.value = { state: "done", error: null };
      });
    } catch (error) {
      if (!this.stopped) this.list.value = { state: "error", error: (error as ApiError).message };
    }
  }

  /** Loads a review's threads (all pages); again when `force`. */
  async loadThreads(reviewId: string, force = false): Promise<void> {
    const known = this.threadsState.value.get(reviewId);
    if (!force && known !== undefined && known.state !== "error") return;
    this.setThreadsState(reviewId, { state: "loading", error: null });
    const request = (this.threadLoads.get(reviewId) ?? 0) + 1;
    this.threadLoads.set(reviewId, request);
    try {
      const all: Thread[] = [];
      let cursor: string | undefined;
      for (let page = 0; page < 50; page++) {
        const answer = await call(api.GET("/api/v1/reviews/{id}/threads", {
          params: { path: { id: reviewId }, query: cursor === undefined ? { limit: 500 } : { limit: 500, cursor } },
        }));
        all.push(...answer.items);
        if (answer.next_cursor === null || answer.next_cursor === "") break;
        cursor = answer.next_cursor;
      }
      if (this.stopped || this.threadLoads.get(reviewId) !== request) return;
      batch(() => {
        // Merged into what is shown, forced or not: a comment or resolve that arrived live
        // while the answer was on its way is newer than the answer (upsertThread keeps the
        // newer thread by updated_at and merges comments by id).
        let next: Thread[] = (this.threads.value.get(reviewId) ?? []).slice();
        for (const t of all) next = upsertThread(next, t);
        this.setThreads(reviewId, next);
        this.setThreadsState(reviewId, { state: "done", error: null });
      });
    } catch (error) {
      if (!this.stopped && this.threadLoads.get(reviewId) === request) {
        this.setThreadsState(reviewId, { state: "error", error: (error as ApiError).message });
      }
    }
  }

  /** A file of a review at its head (cached per review, head and path). */
  file(reviewId: string, path: string): Promise<FileDiff> {
    const head = this.review(reviewId)?.head_sha ?? "";
    const key = `${reviewId}\n${head}\n${path}`;
    let pending = this.files.get(key);
    if (pending === undefined) {
      pending = call(api.GET("/api/v1/reviews/{id}/files/{path}", { params: { path: { id: reviewId, path } } }));
      this.files.set(key, pending);
      pending.catch(() => this.files.delete(key));
    }
    return pending;
  }

  /** Loads one review the person has not seen (a main view naming it, say). */
  async loadReview(reviewId: string): Promise<void> {
    const review = await call(api.GET("/api/v1/reviews/{id}", { params: { path: { id: reviewId } } }));
    if (!this.stopped) this.adoptReview(review);
  }

  // --- actions ----------------------------------------------------------------------------

  async importPull(repo: string, pullNumber: number): Promise<Review> {
    const review = await call(api.POST("/api/v1/sessions/{id}/reviews", {
      params: { path: { id: this.room.sessionId } },
      body: { repo, pull_number: pullNumber },
    })) as Review;
    batch(() => {
      this.adoptReview(review);
      this.selectedId.value = review.id;
    });
    return review;
  }

  async addThread(reviewId: string, input: NewThread): Promise<Thread> {
    const body = {
      path: input.path, line: input.line, side: input.side, body: input.body,
      ...(input.start_line !== undefined && input.start_line !== null && input.start_line !== input.line
        ? { start_line: input.start_line } : {}),
    };
    const thread = await call(api.POST("/api/v1/reviews/{id}/threads", { params: { path: { id: reviewId } }, body }));
    this.applyThread(thread);
    return thread;
  }

  async reply(reviewId: string, threadId: string, text: string): Promise<Comment> {
    const comment = await call(api.POST("/api/v1/reviews/{id}/threads/{thread_id}/comments", {
      params: { path: { id: reviewId, thread_id: threadId } }, body: { body: text },
    }));
    this.applyComment(reviewId, comment);
    return comment;
  }

  async setResolved(reviewId: string, threadId: string, resolved: boolean): Promise<Thread> {
    const params = { params: { path: { id: reviewId, thread_id: threadId } } };
    const thread = await call(resolved
      ? api.POST("/api/v1/reviews/{id}/threads/{thread_id}/resolve", params)
      : api.POST("/api/v1/reviews/{id}/threads/{thread_id}/unresolve", params));
    this.applyThread(thread);
    return thread;
  }

  async submitVerdict(reviewId: string, state: VerdictState, body: string): Promise<Verdict> {
    const verdict = await call(api.POST("/api/v1/reviews/{id}/verdicts", {
      params: { path: { id: reviewId } }, body: { state, body },
    }));
    this.applyVerdict(verdict);
    // The review's answer carries everyone's current verdicts: read it again.
    void this.loadReview(reviewId).catch(() => undefined);
    return verdict;
  }

  async publish(reviewId: string): Promise<PublishResult> {
    const before = this.review(reviewId);
    const already = before !== undefined && (before.state === "published" || before.published_at !== null);
    const published = await call(api.POST("/api/v1/reviews/{id}/publish", { params: { path: { id: reviewId } } }));
    if (before !== undefined) {
      this.replaceShown({
        ...before, state: "published", github_review_id: published.github_review_id,
        published_at: published.published_at,
      });
    }
    void this.loadReview(reviewId).catch(() => undefined);
    return { published, already };
  }

  /** Takes the pull request's new head: its files, diff and threads are read again. */
  takeNewHead(reviewId: string): void {
    const newer = this.moved.value.get(reviewId);
    if (newer === undefined) return;
    batch(() => {
      this.replaceShown(newer);
      const moved = new Map(this.moved.value);
      moved.delete(reviewId);
      this.moved.value = moved;
      this.diffVersion.value += 1;
    });
    for (const key of [...this.files.keys()]) if (key.startsWith(`${reviewId}\n`)) this.files.delete(key);
    void this.loadThreads(reviewId, true);
  }

  /** Everyone's current verdicts on a review, as well as known. */
  verdicts(review: Review, login: (userId: string) => string | null): KnownVerdict[] {
    if (Array.isArray(review.verdicts)) {
      return review.verdicts.map((v: CurrentVerdict) => ({
        authorId: v.user.id,
        login: v.user.github_login !== "" ? v.user.github_login : login(v.user.id),
        state: v.state, body: v.body, at: v.at,
      }));
    }
    const byAuthor = new Map<string, Verdict>();
    const add = (v: Verdict) => {
      const current = byAuthor.get(v.author_id);
      if (current === undefined || Date.parse(v.created_at) >= Date.parse(current.created_at)) byAuthor.set(v.author_id, v);
    };
    if (review.verdict !== null) add(review.verdict);
    for (const v of this.seenVerdicts.value.get(review.id)?.values() ?? []) add(v);
    return [...byAuthor.values()]
      .sort((a, b) => Date.parse(a.created_at) - Date.parse(b.created_at))
      .map((v) => ({ authorId: v.author_id, login: login(v.author_id), state: v.state, body: v.body, at: v.created_at }));
  }

  // --- events -----------------------------------------------------------------------------

  onEvent(event: ServerEvent): void {
    if (event.type === "welcome") {
      // After a reconnect the replay brings what was missed; the list is read again too, in
      // case the replay could not reach back far enough.
      this.welcomes += 1;
      if (this.welcomes > 1) {
        void this.loadList();
        for (const [id, state] of this.threadsState.value) if (state.state === "done") void this.loadThreads(id, true);
      }
      return;
    }
    if (!event.type.startsWith("review.")) return;
    if (typeof event.seq === "number") {
      if (event.seq <= this.maxSeq) return; // replayed after a reconnect: seen already
      this.maxSeq = event.seq;
    }
    const reviewId = typeof event.review_id === "string" ? event.review_id : null;
    if (reviewId === null) return;
    const truncated = event.truncated === true;
    switch (event.type) {
      case "review.created":
      case "review.updated": {
        if (truncated || !Array.isArray(event.files)) {
          void this.loadReview(reviewId).catch(() => undefined);
        } else {
          this.adoptReview(this.reviewOf(event, reviewId));
        }
        if (event.type === "review.updated") this.onReviewChange(event, reviewId);
        break;
      }
      case "review.thread.created": {
        if (truncated || !Array.isArray(event.comments)) {
          if (this.threadsState.value.has(reviewId)) void this.loadThreads(reviewId, true);
        } else {
          this.applyThread(this.threadOf(event, reviewId));
        }
        break;
      }
      case "review.comment.created": {
        if (truncated || typeof event.body !== "string" || typeof event.thread_id !== "string") {
          if (this.threadsState.value.has(reviewId)) void this.loadThreads(reviewId, true);
          break;
        }
        const { id, thread_id, author_id, body, created_at } = event as unknown as Comment;
        this.applyComment(reviewId, { id, thread_id, author_id, body, created_at });
        break;
      }
      default:
        break;
    }
  }

  private onReviewChange(event: ServerEvent, reviewId: string): void {
    const change = event.change;
    if ((change === "thread_resolved" || change === "thread_unresolved") && isObject(event.thread)) {
      const thread = event.thread as unknown as Thread;
      if (Array.isArray(thread.comments)) this.applyThread({ ...thread, review_id: reviewId });
      else if (this.threadsState.value.has(reviewId)) void this.loadThreads(reviewId, true);
    }
    if (change === "verdict" && isObject(event.verdict)) this.applyVerdict(event.verdict as unknown as Verdict);
    if (change === "synchronize" && Array.isArray(event.outdated_thread_ids)) {
      const ids = new Set(event.outdated_thread_ids.filter((x): x is string => typeof x === "string"));
      const threads = this.threads.value.get(reviewId);
      if (threads !== undefined && ids.size > 0) {
        this.setThreads(reviewId, threads.map((t) => (ids.has(t.id) ? { ...t, outdated: true } : t)));
      }
    }
  }

  /** The event without its envelope and the fields it adds to the resource. */
  private strip(event: ServerEvent, extra: readonly string[]): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    const skip = new Set(["type", "seq", "session_id", "at", "truncated", ...extra]);
    for (const [k, v] of Object.entries(event)) if (!skip.has(k)) out[k] = v;
    return out;
  }

  private reviewOf(event: ServerEvent, reviewId: string): Review {
    const rest = this.strip(event, ["change", "thread", "outdated_thread_ids", "review_id"]);
    return { ...(rest as unknown as Review), id: reviewId, session_id: this.room.sessionId };
  }

  private threadOf(event: ServerEvent, reviewId: string): Thread {
    return { ...(this.strip(event, []) as unknown as Thread), review_id: reviewId };
  }

  // --- state ------------------------------------------------------------------------------

  /** A review as the API answered it (REST or event): shown, or held back as a new head. */
  adoptReview(review: Review): void {
    const shown = this.review(review.id);
    if (shown === undefined) {
      this.reviews.value = [review, ...this.reviews.value];
      if (this.selectedId.value === null) this.selectedId.value = review.id;
      return;
    }
    if (!notOlder(review, shown) && review.head_sha === shown.head_sha) return;
    if (review.head_sha === shown.head_sha) {
      this.replaceShown(review);
      if (this.moved.value.has(review.id)) {
        const moved = new Map(this.moved.value);
        moved.delete(review.id);
        this.moved.value = moved;
      }
      return;
    }
    const pending = this.moved.value.get(review.id);
    if (pending !== undefined && !notOlder(review, pending)) return;
    batch(() => {
      this.replaceShown(withoutHead(shown, review));
      this.moved.value = new Map(this.moved.value).set(review.id, review);
    });
  }

  private replaceShown(review: Review): void {
    this.reviews.value = this.reviews.value.map((r) => (r.id === review.id ? review : r));
  }

  applyThread(thread: Thread): void {
    this.setThreads(thread.review_id, upsertThread(this.threads.value.get(thread.review_id) ?? [], thread));
  }

  applyComment(reviewId: string, comment: Comment): void {
    const threads = this.threads.value.get(reviewId);
    const index = threads?.findIndex((t) => t.id === comment.thread_id) ?? -1;
    if (threads === undefined || index < 0) {
      // A thread this page has not seen: read them again (once they were read at all).
      if (this.threadsState.value.has(reviewId)) void this.loadThreads(reviewId, true);
      return;
    }
    const next = threads.slice();
    const thread = threads[index];
    if (thread === undefined) return;
    next[index] = { ...thread, comments: mergeComments(thread.comments, [comment]) };
    this.setThreads(reviewId, next);
  }

  applyVerdict(verdict: Verdict): void {
    const current = this.seenVerdicts.value.get(verdict.review_id) ?? new Map<string, Verdict>();
    const byAuthor = new Map(current).set(verdict.author_id, verdict);
    this.seenVerdicts.value = new Map(this.seenVerdicts.value).set(verdict.review_id, byAuthor);
  }

  private setThreads(reviewId: string, threads: readonly Thread[]): void {
    this.threads.value = new Map(this.threads.value).set(reviewId, threads);
  }

  private setThreadsState(reviewId: string, state: LoadState): void {
    this.threadsState.value = new Map(this.threadsState.value).set(reviewId, state);
  }
}

const stores = new WeakMap<ReviewRoom, ReviewStore>();

/** The room's review store (one per room, started on first use). */
export function reviewStore(room: ReviewRoom): ReviewStore {
  let store = stores.get(room);
  if (store === undefined) {
    store = new ReviewStore(room);
    stores.set(room, store);
    store.start();
  }
  return store;
}
