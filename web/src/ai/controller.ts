// The AI panel's state for one room: the session's AI review jobs kept live from the events
// socket (read over REST when some were missed), the reviews a job can run on, dismissals,
// and where findings are shown besides the list: the shared editor's diagnostics and the
// review diff's `findingsSlot`.
import { batch, computed, effect, signal } from "@preact/signals";
import type { EditorView } from "@codemirror/view";
import type { ApiError } from "../api/client";
import type { RoomController, ServerEvent } from "../room/room";
import { findingsKey, findingsSlot, type DiffFinding } from "../review/findings";
import { restApi, type AiApi, type Review, type ThreadRequest } from "./api";
import { showInEditor, toDiffFinding, type Placed } from "./diagnostics";
import { loadDismissed, saveDismissed } from "./dismiss";
import { anchorLines, anchorRange, applyFix, suggestsCode, type Anchor } from "./fix";
import {
  emptyFailure, emptyJob, incomplete, isFinal, newestFirst, received, withDone, withFailed,
  withFinding, withServer, type Job, type JobFinding, type JobState,
} from "./jobs";

/** How often the job on screen is read while it has not ended (its queued → running step
 * and its end have no event of their own when the events socket is down). */
const POLL_MS = 4_000;

/** A finding of the live document (not of a review's file). */
export function isDocumentJob(job: JobState): boolean {
  if (job.kind !== null) return job.kind === "document";
  const found = received(job);
  return found.length > 0 && found.every((f) => f.path.startsWith("document."));
}

/** The thread a finding becomes: on its last line, from its first when it spans several. */
export function threadRequest(finding: JobFinding): ThreadRequest {
  const multi = finding.end_line > finding.line;
  const suggestion = finding.suggestion ?? "";
  return {
    path: finding.path,
    line: multi ? finding.end_line : finding.line,
    side: "RIGHT",
    ...(multi ? { start_line: finding.line } : {}),
    body: suggestion !== "" ? `${finding.message}\n\nSuggestion: ${suggestion}` : finding.message,
  };
}

/** Per review file, the findings of the newest job that covers it (not dismissed). */
export function diffFindings(jobs: readonly JobState[], hidden: (f: JobFinding) => boolean): Map<string, DiffFinding[]> {
  const out = new Map<string, DiffFinding[]>();
  const claimed = new Set<string>();
  const claimedAll = new Set<string>();
  for (const job of jobs) {
    if (isDocumentJob(job) || job.reviewId === null || emptyFailure(job)) continue;
    const reviewId = job.reviewId;
    if (claimedAll.has(reviewId)) continue;
    for (const f of received(job)) {
      const key = findingsKey(reviewId, f.path);
      if (claimed.has(key) || hidden(f)) continue;
      const list = out.get(key) ?? [];
      list.push(toDiffFinding(f));
      out.set(key, list);
    }
    if (job.paths.length === 0) claimedAll.add(reviewId);
    else for (const p of job.paths) claimed.add(findingsKey(reviewId, p));
  }
  return out;
}

function sameFindings(a: ReadonlyMap<string, readonly DiffFinding[]>, b: ReadonlyMap<string, readonly DiffFinding[]>): boolean {
  if (a.size !== b.size) return false;
  for (const [key, list] of a) {
    const other = b.get(key);
    if (other === undefined || JSON.stringify(other) !== JSON.stringify(list)) return false;
  }
  return true;
}

export type FixOutcome = "applied" | "changed" | "read-only";

export class AiController {
  readonly jobs = signal<ReadonlyMap<string, JobState>>(new Map());
  readonly reviews = signal<readonly Review[]>([]);
  /** The job whose findings the list shows; null follows the newest. */
  readonly chosen = signal<string | null>(null);
  /** Dismissed finding indices per job (this person's, from localStorage). */
  readonly dismissed = signal<ReadonlyMap<string, ReadonlySet<number>>>(new Map());
  /** Loading the jobs or the reviews failed (in the API's words). */
  readonly loadProblem = signal<string | null>(null);
  /** Bumped when a document finding is anchored in the shared text. */
  readonly anchorsVersion = signal(0);

  readonly ordered = computed(() => newestFirst(this.jobs.value.values()));
  readonly shown = computed<JobState | null>(() => {
    const id = this.chosen.value;
    const picked = id === null ? undefined : this.jobs.value.get(id);
    return picked ?? this.ordered.value[0] ?? null;
  });
  /** The document job whose findings are the editor's diagnostics: the newest that did not
   * fail without findings. */
  readonly documentJob = computed(() => this.ordered.value.find((j) => isDocumentJob(j) && !emptyFailure(j)) ?? null);
  readonly canRun = computed(() => {
    const role = this.room.role.value;
    return (role === "owner" || role === "editor") && !this.room.ended.value;
  });

  private readonly anchors = new Map<string, Anchor>();
  /** Findings that streamed in while this page was open (keys): only their anchor, taken
   * as they arrive, shows what the job read. One brought back by a job list after a reload
   * would be anchored to today's text, so its "has the code changed?" check could not fail:
   * Apply fix is not offered for it. */
  private readonly liveAnchors = new Set<string>();
  private readonly fetching = new Map<string, boolean>();
  private readonly disposers: (() => void)[] = [];
  private reviewsTimer: ReturnType<typeof setTimeout> | undefined;
  private pollTimer: ReturnType<typeof setTimeout> | undefined;
  private welcomes = 0;
  private shownIn: EditorView | null = null;
  private shownSignature = "";
  private stopped = false;

  constructor(readonly room: RoomController, private readonly api: AiApi = restApi) {}

  start(): void {
    this.disposers.push(this.room.listen((event) => this.onEvent(event)));
    // The editor's diagnostics follow the document job, dismissals and the editor itself.
    this.disposers.push(effect(() => {
      const view = this.room.editorView.value;
      const loaded = this.room.docLoaded.value;
      const anchored = this.anchorsVersion.value; // re-place when a finding is anchored
      const job = this.documentJob.value;
      const hidden = this.dismissed.value.get(job?.id ?? "");
      if (view === null || anchored < 0) return;
      const ytext = this.room.docLink.value?.ytext;
      const placed: Placed[] = [];
      for (const finding of job === null ? [] : received(job)) {
        if (hidden?.has(finding.index) === true) continue;
        const anchor = this.anchors.get(finding.key);
        const range = anchor !== undefined && ytext !== undefined && loaded ? anchorRange(ytext, anchor) : null;
        placed.push({ finding, range });
      }
      // Streaming review findings change the jobs too: the editor is told only of a change.
      const signature = JSON.stringify(placed.map((p) => [p.finding.key, p.range?.from, p.range?.to]));
      if (view === this.shownIn && signature === this.shownSignature) return;
      this.shownIn = view;
      this.shownSignature = signature;
      showInEditor(view, placed);
    }));
    // The review diff's findings.
    this.disposers.push(effect(() => {
      const dismissed = this.dismissed.value;
      const next = diffFindings(this.ordered.value, (f) => dismissed.get(f.jobId)?.has(f.index) === true);
      if (!sameFindings(findingsSlot.peek(), next)) findingsSlot.value = next;
    }));
    // Document findings that arrived before the document loaded are anchored once it has.
    this.disposers.push(effect(() => {
      if (this.room.docLoaded.value) this.anchorAll();
    }));
    this.disposers.push(effect(() => {
      const job = this.shown.value;
      clearTimeout(this.pollTimer);
      if (job === null || isFinal(job.status)) return;
      const id = job.id;
      this.pollTimer = setTimeout(() => { if (!this.stopped) this.fetchJob(id); }, POLL_MS);
    }));
    void this.loadReviews();
    void this.loadJobs();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.reviewsTimer);
    clearTimeout(this.pollTimer);
    for (const dispose of this.disposers.splice(0)) dispose();
    if (findingsSlot.peek().size > 0) findingsSlot.value = new Map();
  }

  // --- what the server says -------------------------------------------------------------

  private onEvent(event: ServerEvent): void {
    switch (event.type) {
      case "welcome":
        // A reconnect: findings streamed meanwhile are not replayed (they are not sequenced).
        if (this.welcomes++ > 0) this.resync();
        break;
      case "ai.finding": {
        const jobId = event["job_id"];
        const index = event["index"];
        if (typeof jobId !== "string" || typeof index !== "number") break;
        this.liveAnchors.add(`${jobId}:${String(index)}`);
        const job = this.update(jobId, (j) => withFinding(j, index, event["finding"]));
        if (!job.fetched && (job.kind === null || job.requestedBy === null)) this.fetchJob(jobId);
        break;
      }
      case "ai.done":
      case "ai.failed": {
        const jobId = event["job_id"];
        if (typeof jobId !== "string") break;
        const job = this.update(jobId, (j) => (event.type === "ai.done" ? withDone(j, event) : withFailed(j, event)));
        if (incomplete(job)) this.fetchJob(jobId);
        break;
      }
      case "review.created":
      case "review.updated":
        this.loadReviewsSoon();
        break;
    }
  }

  private resync(): void {
    void this.loadJobs();
    this.loadReviewsSoon();
    for (const job of this.jobs.value.values()) {
      if (!isFinal(job.status) || incomplete(job)) this.fetchJob(job.id);
    }
  }

  private update(jobId: string, change: (job: JobState) => JobState): JobState {
    const known = this.jobs.peek().get(jobId);
    const job = change(known ?? emptyJob(jobId));
    const jobs = new Map(this.jobs.peek());
    jobs.set(jobId, job);
    batch(() => {
      this.jobs.value = jobs;
      if (known === undefined) this.loadDismissals(jobId);
    });
    this.anchorJob(job);
    return job;
  }

  private merge(out: Job): void {
    this.update(out.job_id, (j) => withServer(j, out));
  }

  private fetchJob(jobId: string): void {
    if (this.stopped) return;
    if (this.fetching.has(jobId)) {
      this.fetching.set(jobId, true);
      return;
    }
    this.fetching.set(jobId, false);
    void this.api.getJob(jobId)
      .then((out) => { if (!this.stopped) this.merge(out); })
      .catch((error: unknown) => {
        if (!this.stopped && (error as ApiError).status !== 404) {
          this.loadProblem.value = `Could not read an AI review: ${(error as ApiError).message}`;
        }
      })
      .finally(() => {
        const again = this.fetching.get(jobId) === true;
        this.fetching.delete(jobId);
        if (again) {
          this.fetchJob(jobId);
          return;
        }
        // A read that failed changes no signal, so the poll of the job on screen is armed
        // again here (else a job seen while the events socket is down stays "running").
        const shown = this.shown.peek();
        if (!this.stopped && shown !== null && shown.id === jobId && !isFinal(shown.status)) {
          clearTimeout(this.pollTimer);
          this.pollTimer = setTimeout(() => { if (!this.stopped) this.fetchJob(jobId); }, POLL_MS);
        }
      });
  }

  async loadJobs(): Promise<void> {
    try {
      const jobs = await this.api.listJobs(this.room.sessionId);
      if (this.stopped) return;
      batch(() => {
        for (const out of jobs) this.merge(out);
        if (this.loadProblem.value?.startsWith("Could not load") === true) this.loadProblem.value = null;
      });
    } catch (error) {
      if (!this.stopped) this.loadProblem.value = `Could not load the AI reviews: ${(error as ApiError).message}`;
    }
  }

  private loadReviewsSoon(): void {
    clearTimeout(this.reviewsTimer);
    this.reviewsTimer = setTimeout(() => void this.loadReviews(), 250);
  }

  async loadReviews(): Promise<void> {
    try {
      const reviews = await this.api.listReviews(this.room.sessionId);
      if (!this.stopped) this.reviews.value = reviews;
    } catch (error) {
      if (!this.stopped) this.loadProblem.value = `Could not load the pull requests: ${(error as ApiError).message}`;
    }
  }

  retryLoad(): void {
    this.loadProblem.value = null;
    void this.loadJobs();
    void this.loadReviews();
  }

  // --- anchors: a document finding's lines as they were when it arrived ------------------

  private anchorJob(job: JobState): void {
    if (job.kind === "review") return;
    const link = this.room.docLink.peek();
    if (link === null || !link.loaded) return;
    let added = false;
    for (const f of received(job)) {
      if (this.anchors.has(f.key) || !f.path.startsWith("document.")) continue;
      const anchor = anchorLines(link.ytext, f.line, f.end_line);
      if (anchor !== null) {
        this.anchors.set(f.key, anchor);
        added = true;
      }
    }
    if (added) this.anchorsVersion.value = this.anchorsVersion.peek() + 1;
  }

  private anchorAll(): void {
    for (const job of this.jobs.peek().values()) this.anchorJob(job);
  }

  // --- dismissals -------------------------------------------------------------------------

  private loadDismissals(jobId: string): void {
    const set = loadDismissed(this.room.me.id, jobId);
    if (set.size === 0) return;
    const next = new Map(this.dismissed.peek());
    next.set(jobId, set);
    this.dismissed.value = next;
  }

  isDismissed(finding: JobFinding): boolean {
    return this.dismissed.value.get(finding.jobId)?.has(finding.index) === true;
  }

  setDismissed(finding: JobFinding, dismissed: boolean): void {
    const set = new Set(this.dismissed.value.get(finding.jobId) ?? []);
    if (dismissed) set.add(finding.index);
    else set.delete(finding.index);
    const next = new Map(this.dismissed.value);
    next.set(finding.jobId, set);
    this.dismissed.value = next;
    saveDismissed(this.room.me.id, finding.jobId, set);
  }

  // --- what a person does -------------------------------------------------------------------

  private started(jobId: string, fields: Pick<JobState, "kind" | "reviewId" | "paths">): void {
    this.update(jobId, (j) => ({ ...j, ...fields, requestedBy: j.requestedBy ?? this.room.me.id, createdAt: j.createdAt ?? new Date().toISOString() }));
    this.chosen.value = jobId;
    this.fetchJob(jobId);
  }

  /** Runs an AI review on a pull request's review (all files, or these). Throws ApiError. */
  async runReview(reviewId: string, paths: readonly string[] | null): Promise<void> {
    const jobId = await this.api.startReview(reviewId, paths);
    if (!this.stopped) this.started(jobId, { kind: "review", reviewId, paths: paths ?? [] });
  }

  /** Reviews the live shared document. Throws ApiError. */
  async reviewDocument(): Promise<void> {
    const jobId = await this.api.startDocument(this.room.sessionId);
    if (!this.stopped) this.started(jobId, { kind: "document", reviewId: null, paths: [] });
  }

  async cancel(jobId: string): Promise<void> {
    try {
      const out = await this.api.cancel(jobId);
      if (!this.stopped) this.merge(out);
    } catch (error) {
      // 409: it had ended meanwhile; its end is what the page should show.
      if ((error as ApiError).status === 409) this.fetchJob(jobId);
      throw error;
    }
  }

  async makeThread(finding: JobFinding): Promise<void> {
    const job = this.jobs.value.get(finding.jobId);
    if (job === undefined || job.reviewId === null) throw new Error("not a review finding");
    await this.api.createThread(job.reviewId, threadRequest(finding));
  }

  /** Replaces the finding's lines in the shared document with its suggestion, if they still
   * hold what they held when it arrived. */
  applyFix(finding: JobFinding): FixOutcome {
    if (this.room.readOnly.value) return "read-only";
    const link = this.room.docLink.value;
    const anchor = this.anchors.get(finding.key);
    const suggestion = finding.suggestion ?? "";
    if (link === null || anchor === undefined || suggestion === "") return "changed";
    return applyFix(link.ytext, anchor, suggestion) ? "applied" : "changed";
  }

  /** Whether "Apply fix" is offered for a finding: a document finding whose suggestion is
   * code (see `suggestsCode`), while this person may edit. */
  fixable(finding: JobFinding): boolean {
    const job = this.jobs.value.get(finding.jobId);
    return job !== undefined && isDocumentJob(job) && suggestsCode(finding.suggestion) && !this.room.readOnly.value
      && this.liveAnchors.has(finding.key);
  }

  reviewOf(job: JobState): Review | undefined {
    return job.reviewId === null ? undefined : this.reviews.value.find((r) => r.id === job.reviewId);
  }
}
