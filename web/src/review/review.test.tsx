import { render } from "preact";
import { act } from "preact/test-utils";
import { afterEach, describe, expect, it, vi } from "vitest";
import { api, type Session, type User } from "../api/client";
import { RoomController } from "../room/room";
import { findingsSlot } from "./findings";
import { ReviewMain } from "./ReviewMain";
import { ReviewPanel } from "./ReviewPanel";
import type { FileDiff, Review, Thread } from "./types";

const me: User = { id: "u1", github_login: "octocat", avatar_url: "", name: "", created_at: "" };

const review: Review = {
  id: "r1", session_id: "s1", repo: "tandem-demo/hello-api", pull_number: 1, ref: null,
  head_sha: "0b3c8b2aaaa", base_sha: "b", title: "Add user lookup endpoint", state: "open",
  files: [{ path: "app/users.py", status: "modified", additions: 2, deletions: 1, previous_path: null }],
  verdict: null, verdicts: [], decision: null, github_review_id: null, published_at: null,
  created_by: "u1", created_at: "2025-01-01T00:00:00Z", updated_at: "2025-01-01T00:00:00Z",
};

const file: FileDiff = {
  path: "app/users.py", status: "modified", previous_path: null, sha: "0b3c8b2aaaa", patch: "@@ -1,2 +1,3 @@",
  content: "import os\nimport sys\nprint(1)\n",
  hunks: [{
    source_start: 1, source_length: 2, target_start: 1, target_length: 3, section_header: "",
    lines: [
      { kind: " ", source_line: 1, target_line: 1, value: "import os" },
      { kind: "-", source_line: 2, target_line: null, value: "import re" },
      { kind: "+", source_line: null, target_line: 2, value: "import sys" },
      { kind: "+", source_line: null, target_line: 3, value: "print(1)" },
    ],
  }],
};

const thread: Thread = {
  id: "t1", review_id: "r1", path: "app/users.py", line: 2, start_line: null, side: "RIGHT",
  commit_sha: "0b3c8b2aaaa", resolved: false, outdated: false, created_by: "u1",
  created_at: "2025-01-01T00:01:00Z", updated_at: "2025-01-01T00:01:00Z",
  comments: [{ id: "c1", thread_id: "t1", author_id: "u1", body: "<img src=x onerror=alert(1)>", created_at: "2025-01-01T00:01:00Z" }],
};

function mockApi() {
  return vi.spyOn(api, "GET").mockImplementation(((path: string) => {
    const data = path === "/api/v1/sessions/{id}/reviews" ? { items: [review], next_cursor: null }
      : path === "/api/v1/reviews/{id}/threads" ? { items: [thread], next_cursor: null }
      : path === "/api/v1/reviews/{id}/files/{path}" ? file
      : review;
    return Promise.resolve({ data, response: new Response("{}") });
  }) as never);
}

function roomAs(role: "owner" | "editor" | "viewer"): RoomController {
  const room = new RoomController("s1", me);
  room.session.value = { id: "s1", title: "T", status: "active" } as Session;
  room.role.value = role;
  return room;
}

function names(host: HTMLElement): string[] {
  return [...host.querySelectorAll("button")].map((b) => b.getAttribute("aria-label") ?? b.textContent.trim());
}

afterEach(() => { vi.restoreAllMocks(); findingsSlot.value = new Map(); });

describe("the review panel", () => {
  it("offers an owner import, files, finishing and publishing", async () => {
    mockApi();
    const host = document.createElement("div");
    await act(() => { render(<ReviewPanel room={roomAs("owner")} />, host); });
    await vi.waitFor(() => expect(host.querySelector("[aria-label=Files] button")?.textContent).toBe("app/users.py"));
    expect(names(host)).toEqual(expect.arrayContaining(["Import pull request", "Finish review", "Publish to GitHub"]));
    expect(host.textContent).toContain("0b3c8b2");
    render(null, host);
  });

  it("offers a viewer nothing that changes the review", async () => {
    mockApi();
    const host = document.createElement("div");
    await act(() => { render(<ReviewPanel room={roomAs("viewer")} />, host); });
    await vi.waitFor(() => expect(host.querySelector("[aria-label=Files] button")).not.toBeNull());
    for (const name of ["Import pull request", "Finish review", "Publish to GitHub"]) expect(names(host)).not.toContain(name);
    render(null, host);
  });
});

describe("the diff", () => {
  it("shows both line numbers, a comment button per line, threads as text and findings", async () => {
    mockApi();
    const room = roomAs("editor");
    room.mainView.value = { kind: "file", reviewId: "r1", path: "app/users.py" };
    findingsSlot.value = new Map([["r1:app/users.py", [
      { line: 3, endLine: 3, severity: "error", message: "print left in", suggestion: "remove it", category: "style" },
    ]]]);
    const host = document.createElement("div");
    await act(() => { render(<><ReviewPanel room={room} /><ReviewMain room={room} /></>, host); });
    await vi.waitFor(() => expect(host.querySelectorAll(".diff-row")).toHaveLength(4));
    expect(names(host)).toEqual(expect.arrayContaining([
      "Comment on line 1", "Comment on line 2 (removed)", "Comment on line 2", "Comment on line 3",
    ]));
    await vi.waitFor(() => expect(host.querySelector(".thread-body")?.textContent).toBe("<img src=x onerror=alert(1)>"));
    expect(host.querySelector(".thread img")).toBeNull();
    expect(names(host)).toEqual(expect.arrayContaining(["Reply", "Resolve"]));
    const marked = host.querySelector('.diff-row[data-target="3"]');
    expect(marked?.querySelector(".cm-lint-marker-error")?.getAttribute("aria-label")).toBe("AI finding. Error: print left in");
    expect(marked?.querySelector(".diff-code.cm-lintRange-error")).not.toBeNull();
    // Only one comment button is in the Tab order.
    expect(host.querySelectorAll("button.diff-comment[tabindex='0']")).toHaveLength(1);
    render(null, host);
  });

  it("a viewer reads the diff and threads but gets no comment, reply or resolve buttons", async () => {
    mockApi();
    const room = roomAs("viewer");
    room.mainView.value = { kind: "file", reviewId: "r1", path: "app/users.py" };
    const host = document.createElement("div");
    await act(() => { render(<><ReviewPanel room={room} /><ReviewMain room={room} /></>, host); });
    await vi.waitFor(() => expect(host.querySelector(".thread-body")).not.toBeNull());
    expect(names(host).filter((n) => /^Comment on|^Reply$|^Resolve$/.test(n))).toEqual([]);
    expect(names(host)).toContain("Back to the document");
    render(null, host);
  });

  it("a thread on a folded line is listed under the diff and its line can be shown", async () => {
    const long: FileDiff = {
      ...file,
      content: Array.from({ length: 30 }, (_, i) => `line ${String(i + 1)}`).join("\n") + "\n",
      hunks: [{
        source_start: 30, source_length: 1, target_start: 30, target_length: 1, section_header: "",
        lines: [
          { kind: "-", source_line: 30, target_line: null, value: "old 30" },
          { kind: "+", source_line: null, target_line: 30, value: "line 30" },
        ],
      }],
    };
    const folded = { ...thread, line: 12 };
    vi.spyOn(api, "GET").mockImplementation(((path: string) => {
      const data = path === "/api/v1/sessions/{id}/reviews" ? { items: [review], next_cursor: null }
        : path === "/api/v1/reviews/{id}/threads" ? { items: [folded], next_cursor: null }
        : path === "/api/v1/reviews/{id}/files/{path}" ? long
        : review;
      return Promise.resolve({ data, response: new Response("{}") });
    }) as never);
    const room = roomAs("editor");
    room.mainView.value = { kind: "file", reviewId: "r1", path: "app/users.py" };
    const host = document.createElement("div");
    await act(() => { render(<ReviewMain room={room} />, host); });
    await vi.waitFor(() => expect(host.querySelector("[aria-label='Threads on lines not shown'] .thread")).not.toBeNull());
    const show = [...host.querySelectorAll("button")].find((b) => b.textContent === "Show line 12");
    if (show === undefined) throw new Error("no Show line 12");
    await act(() => { show.click(); });
    expect(host.querySelector("[aria-label='Threads on lines not shown']")).toBeNull();
    expect(host.querySelector('.diff-row[data-target="12"] + .thread')).not.toBeNull();
    render(null, host);
  });
});
