import { render } from "preact";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ApiError, type Session, type User } from "../api/client";
import { RoomController, type ServerEvent } from "../room/room";
import { findingsSlot } from "../review/findings";
import { AiView, refusalOf, refusalText } from "./AiPanel";
import type { AiApi, Review } from "./api";
import { AiController, diffFindings, threadRequest } from "./controller";
import { dismissedKey } from "./dismiss";
import { emptyJob, received, withFinding, type Job, type JobFinding } from "./jobs";
import * as Y from "yjs";
import type { DocLink } from "../room/doc";

const me: User = { id: "u1", github_login: "octocat", avatar_url: "" } as User;

function job(fields: Partial<Job> = {}): Job {
  return {
    job_id: "j1", status: "running", provider: "builtin", model: "builtin", kind: "review", session_id: "s1",
    review_id: "r1", paths: [], findings: [], summary: "", files_reviewed: 0, files_reused: 0,
    requested_by: "u2", created_at: "2025-01-01T00:00:00Z", started_at: null, finished_at: null, ...fields,
  };
}

const review = { id: "r1", pull_number: 1, title: "Add rate limiting", repo: "tandem-demo/hello-api",
  files: [{ path: "app.py", status: "modified" }, { path: "README.md", status: "modified" }] } as unknown as Review;

function fakeApi(overrides: Partial<AiApi> = {}): AiApi & { threads: unknown[] } {
  const threads: unknown[] = [];
  return {
    threads,
    listReviews: () => Promise.resolve([review]),
    listJobs: () => Promise.resolve([]),
    getJob: (id) => Promise.resolve(job({ job_id: id })),
    startReview: () => Promise.resolve("j9"),
    startDocument: () => Promise.resolve("j8"),
    cancel: (id) => Promise.resolve(job({ job_id: id, status: "cancelled", error: "cancelled" })),
    createThread: (_r, t) => { threads.push(t); return Promise.resolve(); },
    ...overrides,
  };
}

function room(role: "owner" | "editor" | "viewer" = "editor"): RoomController {
  const r = new RoomController("s1", me);
  r.session.value = { id: "s1", title: "T", status: "active", role } as Session;
  r.role.value = role;
  return r;
}

function emit(r: RoomController, event: ServerEvent) {
  (r as unknown as { onEvent(e: ServerEvent): void }).onEvent(event);
}

const flush = () => new Promise((resolve) => setTimeout(resolve, 0));

afterEach(() => {
  localStorage.clear();
  findingsSlot.value = new Map();
});

describe("AiController", () => {
  it("streams findings into the list and the diff's slot, and reads the job it did not know", async () => {
    const r = room();
    const getJob = vi.fn((id: string) => Promise.resolve(job({ job_id: id })));
    const ai = new AiController(r, fakeApi({ getJob }));
    ai.start();
    await flush();
    emit(r, { type: "ai.finding", job_id: "j1", index: 0,
      finding: { path: "app.py", line: 3, end_line: 4, severity: "error", category: "security", message: "eval of input", suggestion: "<b>use</b> ast" } });
    expect(getJob).toHaveBeenCalledWith("j1");
    await flush();
    expect(findingsSlot.value.get("r1:app.py")).toEqual([
      { line: 3, endLine: 4, severity: "error", message: "eval of input", suggestion: "<b>use</b> ast", category: "security" }]);

    const host = document.createElement("div");
    render(<AiView ai={ai} />, host);
    const region = host.querySelector('[aria-label="AI findings"]');
    expect(region?.textContent).toContain("eval of input");
    expect(region?.textContent).toContain("app.py:3–4");
    // The suggestion is text, never HTML.
    expect(region?.querySelector("pre")?.textContent).toBe("<b>use</b> ast");
    expect(region?.querySelector("b")).toBeNull();
    expect(host.querySelector('[role="img"]')?.getAttribute("aria-label")).toBe("Error");
    const buttons = [...host.querySelectorAll("button")].map((b) => b.textContent);
    expect(buttons).toContain("Run AI review");
    expect(buttons).toContain("Review document");
    expect(buttons).toContain("Make thread");
    expect(buttons).not.toContain("Apply fix");

    emit(r, { type: "ai.done", seq: 5, job_id: "j1", review_id: "r1", summary: "1 finding in 1 file", findings_count: 1 });
    await flush();
    render(<AiView ai={ai} />, host);
    expect(host.querySelector('[role="status"]')?.textContent).toContain("Done: 1 finding in 1 file");
    render(null, host);
    ai.stop();
    expect(findingsSlot.value.size).toBe(0);
  });

  it("offers a viewer no buttons but Dismiss, and dismissal is remembered per person and job", async () => {
    const r = room("viewer");
    const ai = new AiController(r, fakeApi());
    ai.start();
    emit(r, { type: "ai.finding", job_id: "j1", index: 0,
      finding: { path: "app.py", line: 3, end_line: 3, severity: "info", category: "style", message: "long line" } });
    await flush();
    const host = document.createElement("div");
    render(<AiView ai={ai} />, host);
    const buttons = () => [...host.querySelectorAll("button")].map((b) => b.textContent);
    expect(buttons()).toEqual(["app.py:3", "Dismiss"]);
    [...host.querySelectorAll("button")].find((b) => b.textContent === "Dismiss")?.click();
    await flush();
    expect(localStorage.getItem(dismissedKey("u1", "j1"))).toBe("[0]");
    expect(findingsSlot.value.size).toBe(0);
    expect(buttons()).toEqual(["Show dismissed (1)"]);
    render(null, host);
    ai.stop();

    const again = new AiController(r, fakeApi({ listJobs: () => Promise.resolve([job({ findings: [
      { path: "app.py", line: 3, end_line: 3, severity: "info", category: "style", message: "long line" }] })]) }));
    again.start();
    await flush();
    const first = again.shown.value?.findings[0];
    expect(first !== undefined && again.isDismissed(first)).toBe(true);
    again.stop();
  });

  it("rereads running jobs after a reconnect", async () => {
    const r = room();
    const getJob = vi.fn((id: string) => Promise.resolve(job({ job_id: id })));
    const ai = new AiController(r, fakeApi({ getJob, listJobs: () => Promise.resolve([job()]) }));
    (r as unknown as { historyStarted: boolean }).historyStarted = true; // no chat history fetch
    ai.start();
    await flush();
    emit(r, { type: "welcome" });
    expect(getJob).not.toHaveBeenCalled();
    emit(r, { type: "welcome" });
    expect(getJob).toHaveBeenCalledWith("j1");
    ai.stop();
  });

  it("starts a document review and shows a refusal with its retry time", async () => {
    const r = room();
    const refused = new ApiError(429, "resource_exhausted",
      "you already have 3 AI reviews queued or running (limit 3); try again when one finishes", [], 12);
    const ai = new AiController(r, fakeApi({ startDocument: () => Promise.reject(refused) }));
    ai.start();
    await expect(ai.reviewDocument()).rejects.toBe(refused);
    const refusal = refusalOf(refused, 1000);
    expect(refusalText(refusal, 1000)).toBe("You already have 3 AI reviews queued or running (limit 3); try again in 12 s.");
    expect(refusalText(refusal, 14000)).toContain("you can try again now");
    ai.stop();

    const ok = new AiController(r, fakeApi({ getJob: (id) => Promise.resolve(job({ job_id: id, kind: "document", review_id: null, status: "queued" })) }));
    ok.start();
    await ok.reviewDocument();
    expect(ok.shown.value?.id).toBe("j8");
    expect(ok.shown.value?.kind).toBe("document");
    ok.stop();
  });
});

describe("Apply fix", () => {
  it("replaces the finding's lines in the shared text while they hold what they held", async () => {
    const r = room();
    const doc = new Y.Doc();
    const ytext = doc.getText("code");
    ytext.insert(0, "import os\nx = eval(s)\n");
    r.docLink.value = { ytext, loaded: true } as unknown as DocLink;
    r.docLoaded.value = true;
    const ai = new AiController(r, fakeApi({ getJob: (id) => Promise.resolve(job({ job_id: id, kind: "document", review_id: null })) }));
    ai.start();
    const finding = (index: number, line: number, suggestion: string) => ({ type: "ai.finding", job_id: "d1", index,
      finding: { path: "document.py", line, end_line: line, severity: "error", category: "security", message: "m", suggestion } });
    emit(r, finding(0, 2, "Use this:\n```python\nx = ast.literal_eval(s)\n```"));
    emit(r, finding(1, 1, "Remove unused import: `os`"));
    emit(r, finding(2, 2, "```\nx = 2\n```"));
    await flush();
    const [evalFix, advice, second] = received(ai.shown.value ?? emptyJob("none"));
    if (evalFix === undefined || advice === undefined || second === undefined) throw new Error("findings missing");
    // Advice in words is not code to put in place of the line.
    expect(ai.fixable(advice)).toBe(false);
    expect(ai.fixable(evalFix)).toBe(true);
    ytext.insert(0, "# top\n");
    expect(ai.applyFix(evalFix)).toBe("applied");
    expect(ytext.toJSON()).toBe("# top\nimport os\nx = ast.literal_eval(s)\n");
    // The other finding on that line saw the old text: refused.
    expect(ai.applyFix(second)).toBe("changed");
    r.role.value = "viewer";
    expect(ai.fixable(evalFix)).toBe(false);
    ai.stop();
  });

  it("does not offer Apply fix for a finding brought back by a job list (its lines were not seen as the job read them)", async () => {
    const r = room();
    const doc = new Y.Doc();
    doc.getText("code").insert(0, "x = eval(s)\n");
    r.docLink.value = { ytext: doc.getText("code"), loaded: true } as unknown as DocLink;
    r.docLoaded.value = true;
    const listed = job({ job_id: "old", kind: "document", review_id: null, status: "done", findings: [
      { path: "document.py", line: 1, end_line: 1, severity: "error", category: "security", message: "m",
        suggestion: "```\nx = ast.literal_eval(s)\n```" }] });
    const ai = new AiController(r, fakeApi({ listJobs: () => Promise.resolve([listed]) }));
    ai.start();
    await flush();
    const [fromList] = received(ai.shown.value ?? emptyJob("none"));
    if (fromList === undefined) throw new Error("finding missing");
    expect(ai.fixable(fromList)).toBe(false);
    ai.stop();
  });
});

describe("findings", () => {
  it("a thread spans the finding's lines; body is message and suggestion", () => {
    const f = { path: "a.py", line: 3, end_line: 5, message: "m", suggestion: "s" } as JobFinding;
    expect(threadRequest(f)).toEqual({ path: "a.py", line: 5, side: "RIGHT", start_line: 3, body: "m\n\nSuggestion: s" });
    expect(threadRequest({ ...f, end_line: 3, suggestion: null })).toEqual({ path: "a.py", line: 3, side: "RIGHT", body: "m" });
  });

  it("the diff shows the newest job's findings for each file it covered", () => {
    const f = (line: number, path = "a.py") => ({ path, line, end_line: line, severity: "info", category: "", message: "m" });
    const older = { ...withFinding(withFinding(emptyJob("old"), 0, f(1)), 1, f(2, "b.py")), kind: "review" as const, reviewId: "r1" };
    const newer = { ...withFinding(emptyJob("new"), 0, f(9)), kind: "review" as const, reviewId: "r1", paths: ["a.py"] };
    const map = diffFindings([newer, older], () => false);
    expect(map.get("r1:a.py")?.map((d) => d.line)).toEqual([9]);
    expect(map.get("r1:b.py")?.map((d) => d.line)).toEqual([2]);
  });
});
