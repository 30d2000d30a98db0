// AI review jobs as the page knows them: built from the live events (`ai.finding`,
// `ai.done`, `ai.failed`) and the REST answers (`GET /api/v1/ai/jobs/{id}`, the job lists),
// merged so that neither an event replayed twice nor a REST answer older than the events
// already seen changes what is shown. Pure functions over immutable values.
import type { Schemas } from "../api/client";

export type Finding = Schemas["FindingOut"];
export type Job = Schemas["JobOut"];
export type JobStatus = Job["status"];
export type Severity = Finding["severity"];

/** A finding with its place in its job. */
export interface JobFinding extends Finding {
  jobId: string;
  /** Its position in the job (the `index` of its `ai.finding`). */
  index: number;
  /** `${jobId}:${index}`: unique on the page. */
  key: string;
}

export interface JobState {
  id: string;
  /** null while the job is known only from live findings (its REST answer tells). */
  kind: "review" | "document" | null;
  reviewId: string | null;
  status: JobStatus;
  summary: string;
  error: string | null;
  /** The files asked for (empty: all the review's changed files). */
  paths: readonly string[];
  requestedBy: string | null;
  createdAt: string | null;
  /** When this page first heard of it (orders jobs the server has not dated yet). */
  seenAt: number;
  /** By index; a hole is a finding not received yet. */
  findings: readonly (JobFinding | undefined)[];
  /** `findings_count` of its `ai.done`, once known. */
  expected: number | null;
  /** Whether a REST answer for it arrived. */
  fetched: boolean;
}

const FINAL: ReadonlySet<JobStatus> = new Set(["done", "failed", "cancelled"]);

export function isFinal(status: JobStatus): boolean {
  return FINAL.has(status);
}

export function emptyJob(id: string, seenAt: number = Date.now()): JobState {
  return {
    id, kind: null, reviewId: null, status: "queued", summary: "", error: null, paths: [],
    requestedBy: null, createdAt: null, seenAt, findings: [], expected: null, fetched: false,
  };
}

function jobFinding(jobId: string, index: number, finding: Finding): JobFinding {
  return {
    path: finding.path, line: finding.line, end_line: Math.max(finding.line, finding.end_line),
    severity: finding.severity, category: finding.category, message: finding.message,
    suggestion: finding.suggestion ?? null, jobId, index, key: `${jobId}:${String(index)}`,
  };
}

function isFinding(value: unknown): value is Finding {
  if (typeof value !== "object" || value === null) return false;
  const f = value as Record<string, unknown>;
  return typeof f["path"] === "string" && typeof f["line"] === "number"
    && typeof f["message"] === "string"
    && (f["severity"] === "info" || f["severity"] === "warning" || f["severity"] === "error");
}

/** A finding streamed live (`ai.finding`): the job is running at least. */
export function withFinding(job: JobState, index: number, finding: unknown): JobState {
  if (!Number.isInteger(index) || index < 0 || index > 100_000 || !isFinding(finding)) return job;
  const raw = finding as Finding & { end_line?: number; category?: string };
  const clean: Finding = {
    ...raw,
    end_line: typeof raw.end_line === "number" ? raw.end_line : raw.line,
    category: typeof raw.category === "string" ? raw.category : "",
  };
  const findings = [...job.findings];
  findings[index] ??= jobFinding(job.id, index, clean);
  return {
    ...job,
    findings,
    status: job.status === "queued" ? "running" : job.status,
    kind: job.kind ?? (clean.path.startsWith("document.") ? null : "review"),
  };
}

/** `ai.done` `{job_id, review_id, summary, findings_count}`. */
export function withDone(job: JobState, event: Readonly<Record<string, unknown>>): JobState {
  const reviewId = typeof event["review_id"] === "string" ? event["review_id"] : job.reviewId;
  return {
    ...job,
    status: "done",
    summary: typeof event["summary"] === "string" ? event["summary"] : job.summary,
    expected: typeof event["findings_count"] === "number" ? event["findings_count"] : job.expected,
    reviewId,
    kind: job.kind ?? (reviewId !== null ? "review" : event["review_id"] === null ? "document" : null),
    error: null,
  };
}

/** `ai.failed` `{job_id, review_id, error, status}`. */
export function withFailed(job: JobState, event: Readonly<Record<string, unknown>>): JobState {
  const reviewId = typeof event["review_id"] === "string" ? event["review_id"] : job.reviewId;
  const status = event["status"] === "cancelled" ? "cancelled" : "failed";
  const error = event["error"];
  return {
    ...job,
    status,
    error: typeof error === "string" && error !== "" ? error : status,
    reviewId,
    kind: job.kind ?? (reviewId !== null ? "review" : event["review_id"] === null ? "document" : null),
  };
}

/** The REST answer for a job, merged into what the page knows: the server's findings win,
 * findings streamed after the answer was read are kept, and a final status seen live is not
 * undone by an answer read before the job ended. */
export function withServer(job: JobState | undefined, out: Job, seenAt: number = Date.now()): JobState {
  const base = job ?? emptyJob(out.job_id, seenAt);
  const findings: (JobFinding | undefined)[] = [...base.findings];
  out.findings.forEach((f, index) => { findings[index] = base.findings[index] ?? jobFinding(out.job_id, index, f); });
  const keepLive = isFinal(base.status) && !isFinal(out.status);
  return {
    ...base,
    kind: out.kind,
    reviewId: out.review_id,
    status: keepLive ? base.status : out.status,
    summary: keepLive ? base.summary : out.summary,
    error: keepLive ? base.error : out.error ?? (isFinal(out.status) && out.status !== "done" ? out.status : null),
    paths: out.paths,
    requestedBy: out.requested_by,
    createdAt: out.created_at,
    findings,
    // A finished job's answer holds every finding.
    expected: out.status === "done" ? out.findings.length : base.expected,
    fetched: true,
  };
}

export function received(job: JobState): JobFinding[] {
  return job.findings.filter((f): f is JobFinding => f !== undefined);
}

/** Whether the page should read the job over REST: it is known only from events, a finding
 * was missed (a hole, or fewer than `ai.done` counted). */
export function incomplete(job: JobState): boolean {
  if (job.kind === null || (!job.fetched && job.requestedBy === null)) return true;
  const got = received(job).length;
  if (got < job.findings.length) return true;
  return job.expected !== null && got !== job.expected;
}

/** Newest first: the server's creation time, else when the page first heard of the job. */
export function newestFirst(jobs: Iterable<JobState>): JobState[] {
  const at = (j: JobState) => (j.createdAt !== null ? Date.parse(j.createdAt) : j.seenAt);
  return [...jobs].sort((a, b) => at(b) - at(a) || b.seenAt - a.seenAt);
}

function plural(n: number, one: string, many: string = one + "s"): string {
  return `${String(n)} ${n === 1 ? one : many}`;
}

/** The job's progress in words. */
export function progressText(job: JobState): string {
  const got = received(job).length;
  switch (job.status) {
    case "queued":
      return got > 0 ? `Running: ${plural(got, "finding")} so far` : "Queued";
    case "running":
      return `Running: ${plural(got, "finding")} so far`;
    case "done":
      return job.summary !== "" ? `Done: ${job.summary}` : `Done: ${plural(job.expected ?? got, "finding")}`;
    case "failed":
      return `Failed: ${job.error ?? "the AI review failed"}`;
    case "cancelled":
      return `Cancelled${job.error !== null && job.error !== "cancelled" ? `: ${job.error}` : ""}`;
  }
}

/** A failed or cancelled job that produced nothing: it does not replace an older job's
 * findings in the editor or the diff. */
export function emptyFailure(job: JobState): boolean {
  return (job.status === "failed" || job.status === "cancelled") && received(job).length === 0;
}

/** Whether a job covers a review file (its `paths`, or all of them when empty). */
export function covers(job: JobState, path: string): boolean {
  return job.paths.length === 0 || job.paths.includes(path);
}
