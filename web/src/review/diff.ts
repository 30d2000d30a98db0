// A file's unified diff as rows to show: the hunks' lines, the unchanged lines between them
// that the person expanded (read from the file's content at head), and a row per stretch
// still hidden. Pure functions, so the component only renders.
import type { FileDiff, Hunk, HunkLine, Side } from "./types";

export type LineType = "add" | "del" | "ctx";

export interface LineRow {
  kind: "line";
  type: LineType;
  /** Line number in the base version (null for an added line). */
  source: number | null;
  /** Line number in the head version (null for a removed line). */
  target: number | null;
  text: string;
  /** An unchanged line revealed from the file's content (not part of a hunk). */
  expanded: boolean;
}

export interface GapRow {
  kind: "gap";
  /** Which stretch: 0 before the first hunk, i between hunk i-1 and i, hunks.length after. */
  gap: number;
  /** The hunk header of the hunk below (null after the last hunk). */
  header: string | null;
  /** Hidden head lines firstHidden..lastHidden (inclusive); hidden 0 is a header only. */
  firstHidden: number;
  lastHidden: number;
  hidden: number;
  /** The hidden lines can be shown (the file's content is there). */
  expandable: boolean;
}

export type DiffRow = LineRow | GapRow;

/** How much of each gap is revealed: lines from its top (after the hunk above) and from its
 * bottom (before the hunk below). */
export type Expansion = ReadonlyMap<number, { top: number; bottom: number }>;

export const EXPAND_STEP = 20;

/** The lines of a text, without line ends (a final newline ends the last line). */
export function splitLines(text: string): string[] {
  if (text === "") return [];
  const lines = text.split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  return lines.map((l) => (l.endsWith("\r") ? l.slice(0, -1) : l));
}

function firstTarget(h: Hunk): number {
  return h.target_length === 0 ? h.target_start + 1 : h.target_start;
}

function lastTarget(h: Hunk): number {
  return h.target_length === 0 ? h.target_start : h.target_start + h.target_length - 1;
}

function firstSource(h: Hunk): number {
  return h.source_length === 0 ? h.source_start + 1 : h.source_start;
}

function lastSource(h: Hunk): number {
  return h.source_length === 0 ? h.source_start : h.source_start + h.source_length - 1;
}

interface Gap {
  gap: number;
  header: string | null;
  /** Head lines first..last (inclusive) are not in any hunk. */
  first: number;
  last: number;
  /** source line = target line + delta in this gap. */
  delta: number;
}

/** The stretches of unchanged lines around the hunks (head line numbers). `total` is the
 * number of head lines, or null when the content is not there (the last gap is unknown). */
export function gaps(hunks: readonly Hunk[], total: number | null): Gap[] {
  const out: Gap[] = [];
  let prevLastTarget = 0;
  let prevLastSource = 0;
  hunks.forEach((h, i) => {
    out.push({
      gap: i, header: headerOf(h), first: prevLastTarget + 1, last: firstTarget(h) - 1,
      delta: firstSource(h) - firstTarget(h),
    });
    prevLastTarget = lastTarget(h);
    prevLastSource = lastSource(h);
  });
  if (total !== null) {
    out.push({
      gap: hunks.length, header: null, first: prevLastTarget + 1, last: total,
      delta: prevLastSource - prevLastTarget,
    });
  }
  return out;
}

export function headerOf(h: Hunk): string {
  const side = (start: number, length: number) => (length === 1 ? String(start) : `${String(start)},${String(length)}`);
  const section = h.section_header === "" ? "" : ` ${h.section_header}`;
  return `@@ -${side(h.source_start, h.source_length)} +${side(h.target_start, h.target_length)} @@${section}`;
}

function hunkRow(line: HunkLine): LineRow {
  return {
    kind: "line",
    type: line.kind === "+" ? "add" : line.kind === "-" ? "del" : "ctx",
    source: line.source_line,
    target: line.target_line,
    text: line.value.endsWith("\r") ? line.value.slice(0, -1) : line.value,
    expanded: false,
  };
}

/** The rows of a file's diff, with the gaps expanded as `expansion` says (all of them when
 * `whole`). `lines` is the head content split in lines, or null (a removed file). */
export function buildRows(file: Pick<FileDiff, "hunks">, lines: readonly string[] | null,
                          expansion: Expansion, whole: boolean): DiffRow[] {
  const rows: DiffRow[] = [];
  const total = lines === null ? null : lines.length;
  const stretches = gaps(file.hunks, total);
  const emitContext = (g: Gap, from: number, to: number) => {
    if (lines === null) return;
    for (let t = from; t <= to; t++) {
      rows.push({ kind: "line", type: "ctx", source: t + g.delta, target: t, text: lines[t - 1] ?? "", expanded: true });
    }
  };
  for (const g of stretches) {
    const size = Math.max(0, g.last - g.first + 1);
    const open = whole ? { top: size, bottom: 0 } : expansion.get(g.gap) ?? { top: 0, bottom: 0 };
    const top = Math.min(open.top, size);
    const bottom = Math.min(open.bottom, size - top);
    const hidden = lines === null ? size : size - top - bottom;
    emitContext(g, g.first, g.first + top - 1);
    if (hidden > 0 || (g.gap === 0 && g.header !== null && !whole)) {
      rows.push({
        kind: "gap", gap: g.gap, header: g.header,
        firstHidden: g.first + top, lastHidden: g.last - bottom, hidden,
        expandable: lines !== null && hidden > 0,
      });
    }
    emitContext(g, g.last - bottom + 1, g.last);
    const hunk = file.hunks[g.gap];
    if (hunk !== undefined) for (const line of hunk.lines) rows.push(hunkRow(line));
  }
  // Without content the hunks after the last gap were pushed in the loop; nothing follows.
  return rows;
}

/** The expansion after the person asked to reveal `how` of a gap. */
export function expand(expansion: Expansion, row: GapRow, how: "up" | "down" | "all"): Expansion {
  const next = new Map(expansion);
  const current = expansion.get(row.gap) ?? { top: 0, bottom: 0 };
  if (how === "all") next.set(row.gap, { top: current.top + row.hidden, bottom: current.bottom });
  else if (how === "down") next.set(row.gap, { top: current.top + Math.min(EXPAND_STEP, row.hidden), bottom: current.bottom });
  else next.set(row.gap, { top: current.top, bottom: current.bottom + Math.min(EXPAND_STEP, row.hidden) });
  return next;
}

/** The expansion that reveals head line `target` (when it is hidden in a gap). */
export function reveal(expansion: Expansion, rows: readonly DiffRow[], target: number): Expansion {
  const row = rows.find((r): r is GapRow => r.kind === "gap" && r.hidden > 0 && r.firstHidden <= target && target <= r.lastHidden);
  return row === undefined || !row.expandable ? expansion : expand(expansion, row, "all");
}

/** The line a comment on this row is about: the head's for added and unchanged lines, the
 * base's for removed ones. */
export function commentTarget(row: LineRow): { side: Side; line: number } | null {
  if (row.type === "del") return row.source === null ? null : { side: "LEFT", line: row.source };
  return row.target === null ? null : { side: "RIGHT", line: row.target };
}

export function lineKey(side: Side, line: number): string {
  return `${side}:${String(line)}`;
}

/** A range from an anchor line to a line (same side): start_line is the smaller. */
export function rangeOf(anchor: number | null, line: number): { start: number | null; line: number } {
  if (anchor === null || anchor === line) return { start: null, line };
  return { start: Math.min(anchor, line), line: Math.max(anchor, line) };
}

/** The base version's lines the hunks show, as one text for highlighting, and which base line
 * each of its lines is. */
export function baseExcerpt(hunks: readonly Hunk[]): { text: string; lines: number[] } {
  const texts: string[] = [];
  const numbers: number[] = [];
  for (const h of hunks) {
    for (const l of h.lines) {
      if (l.kind === "+" || l.source_line === null) continue;
      texts.push(l.value.endsWith("\r") ? l.value.slice(0, -1) : l.value);
      numbers.push(l.source_line);
    }
  }
  return { text: texts.join("\n"), lines: numbers };
}
