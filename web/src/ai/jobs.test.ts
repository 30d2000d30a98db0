import { describe, expect, it } from "vitest";
import {
  emptyJob, incomplete, newestFirst, progressText, received, withDone, withFailed, withFinding, withServer,
  type Job,
} from "./jobs";

const finding = (line: number, extra: Record<string, unknown> = {}) => ({
  path: "app.py", line, end_line: line, severity: "warning", category: "security", message: `m${String(line)}`, ...extra,
});

function job(fields: Partial<Job> = {}): Job {
  return {
    job_id: "j1", status: "running", provider: "builtin", model: "builtin", kind: "review", session_id: "s1",
    review_id: "r1", paths: [], findings: [], summary: "", files_reviewed: 0, files_reused: 0,
    requested_by: "u1", created_at: "2025-01-01T00:00:00Z", started_at: null, finished_at: null, ...fields,
  };
}

describe("jobs", () => {
  it("collects streamed findings by index, once each, and counts them", () => {
    let j = emptyJob("j1");
    j = withFinding(j, 1, finding(5));
    j = withFinding(j, 0, finding(2));
    j = withFinding(j, 1, finding(99)); // a replay does not replace it
    expect(received(j).map((f) => [f.index, f.line, f.key])).toEqual([[0, 2, "j1:0"], [1, 5, "j1:1"]]);
    expect(j.status).toBe("running");
    expect(progressText(j)).toBe("Running: 2 findings so far");
    expect(withFinding(j, 2, { path: "x" })).toBe(j); // not a finding
  });

  it("a done event whose count differs from what arrived asks for the job", () => {
    let j = withServer(undefined, job());
    j = withFinding(j, 0, finding(1));
    expect(incomplete(j)).toBe(false);
    j = withDone(j, { review_id: "r1", summary: "2 findings in 1 file", findings_count: 2 });
    expect(incomplete(j)).toBe(true);
    expect(progressText(j)).toBe("Done: 2 findings in 1 file");
    j = withServer(j, job({ status: "done", findings: [finding(1), finding(7)] as Job["findings"], summary: "2 findings in 1 file" }));
    expect(incomplete(j)).toBe(false);
    expect(received(j).map((f) => f.line)).toEqual([1, 7]);
  });

  it("a hole in the indices is incomplete; a job known only from events is too", () => {
    const live = withFinding(emptyJob("j1"), 2, finding(1));
    expect(incomplete(live)).toBe(true);
    const fetched = withFinding(withServer(undefined, job()), 2, finding(1));
    expect(incomplete(fetched)).toBe(true);
  });

  it("an answer read before the job ended does not undo its end", () => {
    let j = withFailed(withServer(undefined, job()), { review_id: "r1", error: "provider down", status: "failed" });
    j = withServer(j, job({ status: "running" }));
    expect(j.status).toBe("failed");
    expect(progressText(j)).toBe("Failed: provider down");
    const cancelled = withFailed(emptyJob("j2"), { review_id: null, error: "cancelled", status: "cancelled" });
    expect(cancelled.kind).toBe("document");
    expect(progressText(cancelled)).toBe("Cancelled");
  });

  it("orders jobs newest first", () => {
    const a = withServer(undefined, job({ job_id: "a", created_at: "2025-01-01T00:00:00Z" }));
    const b = withServer(undefined, job({ job_id: "b", created_at: "2025-01-02T00:00:00Z" }));
    const c = emptyJob("c", Date.parse("2025-01-03T00:00:00Z"));
    expect(newestFirst([a, b, c]).map((j) => j.id)).toEqual(["c", "b", "a"]);
  });
});
