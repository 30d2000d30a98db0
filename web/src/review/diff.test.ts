import { describe, expect, it } from "vitest";
import { baseExcerpt, buildRows, commentTarget, expand, gaps, type GapRow, headerOf, type LineRow, rangeOf, reveal, splitLines } from "./diff";
import type { Hunk } from "./types";

// A 30-line file; line 10 changed, a line added after 20, line 26 removed from the base.
const head = Array.from({ length: 30 }, (_, i) => (i + 1 === 10 ? "ten!" : i + 1 === 21 ? "added" : `line ${String(i + 1)}`));
const hunks: Hunk[] = [
  {
    source_start: 8, source_length: 5, target_start: 8, target_length: 5, section_header: "def f():",
    lines: [
      { kind: " ", source_line: 8, target_line: 8, value: "line 8" },
      { kind: " ", source_line: 9, target_line: 9, value: "line 9" },
      { kind: "-", source_line: 10, target_line: null, value: "line 10" },
      { kind: "+", source_line: null, target_line: 10, value: "ten!" },
      { kind: " ", source_line: 11, target_line: 11, value: "line 11" },
      { kind: " ", source_line: 12, target_line: 12, value: "line 12" },
    ],
  },
  {
    source_start: 19, source_length: 3, target_start: 19, target_length: 4, section_header: "",
    lines: [
      { kind: " ", source_line: 19, target_line: 19, value: "line 19" },
      { kind: " ", source_line: 20, target_line: 20, value: "line 20" },
      { kind: "+", source_line: null, target_line: 21, value: "added" },
      { kind: " ", source_line: 21, target_line: 22, value: "line 22\r" },
    ],
  },
];

function lineRows(rows: ReturnType<typeof buildRows>): LineRow[] {
  return rows.filter((r): r is LineRow => r.kind === "line");
}

describe("diff rows", () => {
  it("splits content into lines without line ends", () => {
    expect(splitLines("a\r\nb\n")).toEqual(["a", "b"]);
    expect(splitLines("a\nb")).toEqual(["a", "b"]);
    expect(splitLines("")).toEqual([]);
  });

  it("finds the unchanged stretches around the hunks, with their base line offsets", () => {
    const g = gaps(hunks, 30);
    expect(g.map((x) => [x.gap, x.first, x.last, x.delta])).toEqual([[0, 1, 7, 0], [1, 13, 18, 0], [2, 23, 30, -1]]);
    expect(gaps(hunks, null)).toHaveLength(2);
  });

  it("shows the hunks folded, with a row per hidden stretch", () => {
    const rows = buildRows({ hunks }, head, new Map(), false);
    const gapRows = rows.filter((r): r is GapRow => r.kind === "gap");
    expect(gapRows.map((g) => [g.gap, g.hidden, g.firstHidden, g.lastHidden, g.header])).toEqual([
      [0, 7, 1, 7, "@@ -8,5 +8,5 @@ def f():"], [1, 6, 13, 18, "@@ -19,3 +19,4 @@"], [2, 8, 23, 30, null],
    ]);
    const lines = lineRows(rows);
    expect(lines).toHaveLength(10);
    expect(lines[3]).toMatchObject({ type: "add", source: null, target: 10, text: "ten!" });
    expect(lines[9]).toMatchObject({ type: "ctx", source: 21, target: 22, text: "line 22" });
  });

  it("expands a gap from either end and wholly, numbering both sides", () => {
    const rows = buildRows({ hunks }, head, new Map(), false);
    const last = rows.find((r): r is GapRow => r.kind === "gap" && r.gap === 2);
    if (last === undefined) throw new Error("no gap");
    const opened = buildRows({ hunks }, head, expand(new Map(), last, "all"), false);
    const tail = lineRows(opened).slice(-8);
    expect(tail.map((r) => [r.source, r.target, r.expanded])).toEqual(
      Array.from({ length: 8 }, (_, i) => [22 + i, 23 + i, true]));
    expect(opened.some((r) => r.kind === "gap" && r.gap === 2)).toBe(false);

    const first = rows.find((r): r is GapRow => r.kind === "gap" && r.gap === 0);
    if (first === undefined) throw new Error("no gap");
    const up = buildRows({ hunks }, head, expand(new Map(), first, "up"), false);
    // 7 lines hidden, fewer than a step: all of them come up.
    expect(lineRows(up)[0]).toMatchObject({ source: 1, target: 1, expanded: true });
  });

  it("shows the whole file with every line once", () => {
    const rows = buildRows({ hunks }, head, new Map(), true);
    expect(rows.some((r) => r.kind === "gap")).toBe(false);
    const targets = lineRows(rows).flatMap((r) => (r.target === null ? [] : [r.target]));
    expect(targets).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
  });

  it("without content (a removed file) shows the hunks and nothing to expand", () => {
    const rows = buildRows({ hunks }, null, new Map(), true);
    expect(rows.filter((r): r is GapRow => r.kind === "gap").every((r) => !r.expandable)).toBe(true);
    expect(lineRows(rows)).toHaveLength(10);
  });

  it("reveals a folded line asked for", () => {
    const rows = buildRows({ hunks }, head, new Map(), false);
    const next = reveal(new Map(), rows, 15);
    expect(lineRows(buildRows({ hunks }, head, next, false)).some((r) => r.target === 15)).toBe(true);
    expect(reveal(new Map(), rows, 10).size).toBe(0);
  });

  it("comments on the head's line for added and unchanged lines, the base's for removed ones", () => {
    const lines = lineRows(buildRows({ hunks }, head, new Map(), false));
    expect(lines.map(commentTarget).slice(1, 4)).toEqual([
      { side: "RIGHT", line: 9 }, { side: "LEFT", line: 10 }, { side: "RIGHT", line: 10 },
    ]);
    expect(rangeOf(null, 5)).toEqual({ start: null, line: 5 });
    expect(rangeOf(9, 5)).toEqual({ start: 5, line: 9 });
    expect(rangeOf(5, 5)).toEqual({ start: null, line: 5 });
  });

  it("writes hunk headers as git does, and collects the base lines shown", () => {
    expect(headerOf({ source_start: 3, source_length: 1, target_start: 3, target_length: 0, section_header: "", lines: [] }))
      .toBe("@@ -3 +3,0 @@");
    const base = baseExcerpt(hunks);
    expect(base.lines).toEqual([8, 9, 10, 11, 12, 19, 20, 21]);
    expect(base.text.split("\n")[7]).toBe("line 22");
  });
});
