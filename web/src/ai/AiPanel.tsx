// The room's AI findings: run an AI review on a pull request or the live document, follow
// the job as its findings stream in, and act on each finding (dismiss it, make a review
// thread of it, apply its fix to the shared document).
import { EditorSelection } from "@codemirror/state";
import { EditorView } from "@codemirror/view";
import { useEffect, useMemo, useState } from "preact/hooks";
import type { ApiError } from "../api/client";
import type { RoomController } from "../room/room";
import type { Review } from "./api";
import { AiController, isDocumentJob } from "./controller";
import { isFinal, progressText, received, type JobFinding, type JobState, type Severity } from "./jobs";
import "./ai.css";

const SEVERITY: Record<Severity, { label: string; icon: string }> = {
  error: { label: "Error", icon: "✖" },
  warning: { label: "Warning", icon: "▲" },
  info: { label: "Info", icon: "i" },
};

/** A refused request in words: 429 with its retry time, counting down. */
export interface Refusal {
  message: string;
  /** When it may be tried again (ms since the epoch), from Retry-After. */
  retryAt: number | null;
}

export function refusalOf(error: ApiError, now: number = Date.now()): Refusal {
  if (error.status === 403) return { message: "Only editors can run AI reviews in this session.", retryAt: null };
  const text = error.message.replace(/;\s*try again when one finishes\.?$/i, "");
  const message = text.charAt(0).toUpperCase() + text.slice(1);
  const after = error.retryAfter;
  return { message, retryAt: error.status === 429 && after !== null && Number.isFinite(after) ? now + after * 1000 : null };
}

export function refusalText(refusal: Refusal, now: number): string {
  if (refusal.retryAt === null) return refusal.message.endsWith(".") ? refusal.message : `${refusal.message}.`;
  const left = Math.ceil((refusal.retryAt - now) / 1000);
  return left > 0 ? `${refusal.message}; try again in ${String(left)} s.` : `${refusal.message}; you can try again now.`;
}

export function reviewLabel(review: Review | undefined): string {
  if (review === undefined) return "Pull request";
  const number = review.pull_number !== null ? `#${String(review.pull_number)} ` : "";
  return `${number}${review.title || review.repo}`;
}

function jobLabel(ai: AiController, job: JobState): string {
  if (isDocumentJob(job)) return "Document";
  if (job.kind === null) return "AI review";
  const label = reviewLabel(ai.reviewOf(job));
  return job.paths.length > 0 ? `${label} (${String(job.paths.length)} ${job.paths.length === 1 ? "file" : "files"})` : label;
}

function clock(iso: string | null): string {
  if (iso === null) return "";
  const at = new Date(iso);
  return Number.isNaN(at.getTime()) ? "" : at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function where(finding: JobFinding): string {
  const lines = finding.end_line > finding.line ? `${String(finding.line)}–${String(finding.end_line)}` : String(finding.line);
  return `${finding.path}:${lines}`;
}

/** Puts the caret on a line of the shared document and scrolls to it. */
function goToLine(room: RoomController, line: number): void {
  room.mainView.value = { kind: "document" };
  requestAnimationFrame(() => {
    const view = room.editorView.value;
    if (view === null) return;
    const doc = view.state.doc;
    const pos = doc.line(Math.min(Math.max(1, line), doc.lines)).from;
    view.dispatch({ selection: EditorSelection.cursor(pos), effects: EditorView.scrollIntoView(pos, { y: "center" }) });
    view.focus();
  });
}

function RunControls({ ai }: { ai: AiController }) {
  const room = ai.room;
  const reviews = ai.reviews.value;
  const main = room.mainView.value;
  const [reviewId, setReviewId] = useState<string | null>(null);
  const [chosen, setChosen] = useState<{ reviewId: string; paths: ReadonlySet<string> } | null>(null);
  const [busy, setBusy] = useState<"document" | "review" | null>(null);
  const [refusal, setRefusal] = useState<Refusal | null>(null);
  const review = reviews.find((r) => r.id === reviewId)
    ?? reviews.find((r) => main.kind === "file" && r.id === main.reviewId)
    ?? reviews[0];
  const files = review === undefined ? [] : review.files.filter((f) => f.status !== "removed");
  const picked = review !== undefined && chosen?.reviewId === review.id ? chosen.paths : new Set<string>();
  const now = room.now.value;

  async function run(which: "document" | "review") {
    if (which === "review" && review === undefined) return;
    setBusy(which);
    setRefusal(null);
    try {
      if (which === "document") await ai.reviewDocument();
      else if (review !== undefined) await ai.runReview(review.id, picked.size > 0 ? files.map((f) => f.path).filter((p) => picked.has(p)) : null);
    } catch (error) {
      setRefusal(refusalOf(error as ApiError));
    } finally {
      setBusy(null);
    }
  }

  function toggle(path: string, on: boolean) {
    if (review === undefined) return;
    const next = new Set(picked);
    if (on) next.add(path);
    else next.delete(path);
    setChosen({ reviewId: review.id, paths: next });
  }

  return (
    <div class="ai-run">
      <div class="ai-run-row">
        <button type="button" class="secondary" disabled={busy !== null} onClick={() => void run("document")}>Review document</button>
      </div>
      {review !== undefined && (
        <div class="ai-run-review">
          {reviews.length > 1 && (
            <label class="ai-run-pick">
              Pull request to review
              <select value={review.id} onChange={(e) => setReviewId(e.currentTarget.value)}>
                {reviews.map((r) => <option key={r.id} value={r.id}>{reviewLabel(r)}</option>)}
              </select>
            </label>
          )}
          {files.length > 1 && (
            <details class="ai-run-files">
              <summary>{picked.size === 0 ? `All ${String(files.length)} files` : `${String(picked.size)} of ${String(files.length)} files`}</summary>
              <fieldset>
                <legend>Files to review (none chosen: all)</legend>
                {files.map((f) => (
                  <label key={f.path} class="ai-check">
                    <input type="checkbox" checked={picked.has(f.path)}
                           onChange={(e) => toggle(f.path, e.currentTarget.checked)} />
                    <span>{f.path}</span>
                  </label>
                ))}
              </fieldset>
            </details>
          )}
          <button type="button" class="primary" disabled={busy !== null} onClick={() => void run("review")}>Run AI review</button>
          {reviews.length === 1 && <span class="muted ai-run-target">{reviewLabel(review)}</span>}
        </div>
      )}
      {busy !== null && <p class="muted" role="status">Starting the AI review…</p>}
      {refusal !== null && <p class="error" role="alert">{refusalText(refusal, now)}</p>}
    </div>
  );
}

function JobProgress({ ai, job }: { ai: AiController; job: JobState }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const role = ai.room.role.value;
  const mayCancel = role === "owner" || role === "editor" || job.requestedBy === ai.room.me.id;
  const running = !isFinal(job.status);

  async function cancel() {
    setBusy(true);
    setError(null);
    try {
      await ai.cancel(job.id);
    } catch (e) {
      setError((e as ApiError).status === 409 ? "It had already ended." : (e as ApiError).message);
    } finally {
      setBusy(false);
    }
  }

  return (
    <div class={`ai-job ai-job-${job.status}`}>
      <p class="ai-progress" role="status">
        {running && <span class="ai-spinner" aria-hidden="true" />}
        <span class="ai-job-what">{jobLabel(ai, job)}</span>{" "}
        <span>{progressText(job)}</span>
      </p>
      {running && mayCancel && (
        <button type="button" class="secondary small" disabled={busy} onClick={() => void cancel()}>Cancel</button>
      )}
      {error !== null && <p class="error" role="alert">{error}</p>}
    </div>
  );
}

function FindingItem({ ai, finding, document, dismissed }: {
  ai: AiController; finding: JobFinding; document: boolean; dismissed: boolean;
}) {
  const [note, setNote] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [threaded, setThreaded] = useState(false);
  const room = ai.room;
  const canEdit = ai.canRun.value;
  const severity = SEVERITY[finding.severity];
  const job = ai.jobs.value.get(finding.jobId);
  const suggestion = finding.suggestion ?? "";

  async function makeThread() {
    setBusy(true);
    setError(null);
    try {
      await ai.makeThread(finding);
      setThreaded(true);
      setNote("Thread created");
    } catch (e) {
      setError((e as ApiError).message);
    } finally {
      setBusy(false);
    }
  }

  function applyFix() {
    setError(null);
    setNote(null);
    const outcome = ai.applyFix(finding);
    if (outcome === "applied") setNote("Fix applied");
    else if (outcome === "read-only") setError("The document is read-only for you now.");
    else setError("The code changed since this finding; review again");
  }

  function go() {
    if (document) goToLine(room, finding.line);
    else if (job?.reviewId !== null && job?.reviewId !== undefined) {
      room.mainView.value = { kind: "file", reviewId: job.reviewId, path: finding.path, line: finding.line };
    }
  }

  return (
    <li class={`ai-finding ai-sev-${finding.severity}${dismissed ? " ai-dismissed" : ""}`}>
      <div class="ai-finding-head">
        <span class="ai-sev">
          <span class="ai-sev-icon" role="img" aria-label={severity.label}>{severity.icon}</span>
          <span class="ai-sev-text" aria-hidden="true">{finding.severity}</span>
        </span>
        {finding.category !== "" && <span class="ai-category">{finding.category}</span>}
        <button type="button" class="link ai-where" onClick={go}
                title={document ? "Show in the shared document" : "Show in the diff"}>{where(finding)}</button>
      </div>
      <p class="ai-message">{finding.message}</p>
      {suggestion !== "" && (
        <div class="ai-suggestion">
          <span class="ai-suggestion-label">Suggestion</span>
          <pre>{suggestion}</pre>
        </div>
      )}
      <div class="ai-finding-actions">
        {dismissed
          ? <button type="button" class="secondary small" onClick={() => ai.setDismissed(finding, false)}>Restore</button>
          : <button type="button" class="secondary small" onClick={() => ai.setDismissed(finding, true)}>Dismiss</button>}
        {!document && canEdit && !threaded && (
          <button type="button" class="secondary small" disabled={busy} onClick={() => void makeThread()}>Make thread</button>
        )}
        {document && canEdit && ai.fixable(finding) && (
          <button type="button" class="secondary small" onClick={applyFix}>Apply fix</button>
        )}
      </div>
      {note !== null && <p class="ai-note" role="status">{note}</p>}
      {error !== null && <p class="error" role="alert">{error}</p>}
    </li>
  );
}

function Findings({ ai, job }: { ai: AiController; job: JobState | null }) {
  const [showDismissed, setShowDismissed] = useState(false);
  const found = job === null ? [] : received(job);
  const dismissed = found.filter((f) => ai.isDismissed(f));
  const visible = showDismissed ? found : found.filter((f) => !ai.isDismissed(f));
  const document = job !== null && isDocumentJob(job);
  return (
    <section class="ai-findings" aria-label="AI findings">
      {job === null
        ? <p class="muted">No AI reviews in this session yet.</p>
        : visible.length === 0
          ? <p class="muted">{isFinal(job.status) ? (found.length > 0 ? "Every finding is dismissed." : "No findings.") : "No findings yet."}</p>
          : (
            <ul class="ai-list">
              {visible.map((f) => <FindingItem key={f.key} ai={ai} finding={f} document={document} dismissed={ai.isDismissed(f)} />)}
            </ul>
          )}
      {dismissed.length > 0 && (
        <button type="button" class="link ai-toggle" aria-pressed={showDismissed} onClick={() => setShowDismissed(!showDismissed)}>
          Show dismissed ({dismissed.length})
        </button>
      )}
    </section>
  );
}

export function AiView({ ai }: { ai: AiController }) {
  const jobs = ai.ordered.value;
  const job = ai.shown.value;
  const problem = ai.loadProblem.value;
  return (
    <div class="ai">
      {ai.canRun.value && <RunControls ai={ai} />}
      {problem !== null && (
        <p class="error" role="alert">
          {problem}{" "}
          <button type="button" class="link" onClick={() => ai.retryLoad()}>Try again</button>
        </p>
      )}
      {jobs.length > 1 && job !== null && (
        <label class="ai-pick">
          Show AI review
          <select value={job.id} onChange={(e) => { ai.chosen.value = e.currentTarget.value; }}>
            {jobs.map((j) => (
              <option key={j.id} value={j.id}>
                {jobLabel(ai, j)} · {j.status}{j.createdAt !== null ? ` · ${clock(j.createdAt)}` : ""}
              </option>
            ))}
          </select>
        </label>
      )}
      {job !== null && <JobProgress key={job.id} ai={ai} job={job} />}
      <Findings key={job?.id ?? "none"} ai={ai} job={job} />
    </div>
  );
}

/** The side panel's "AI findings" section content. */
export function AiPanel({ room }: { room: RoomController }) {
  const ai = useMemo(() => new AiController(room), [room]);
  useEffect(() => {
    ai.start();
    return () => ai.stop();
  }, [ai]);
  return <AiView ai={ai} />;
}
