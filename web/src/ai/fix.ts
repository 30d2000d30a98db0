// Where a document finding's lines are in the shared Y.Text, and "Apply fix": the finding's
// lines replaced by its suggestion, only while they still hold what they held when the
// finding arrived (someone may have changed them since).
import * as Y from "yjs";

export interface Range {
  from: number;
  to: number;
}

/** Offsets of lines `line..endLine` (1-based, inclusive) of `text`: from the first line's
 * start to the last line's end (its line break excluded). Null when `line` is past the end;
 * an `endLine` past the end stops at the end. */
export function lineRange(text: string, line: number, endLine: number): Range | null {
  if (!Number.isInteger(line) || line < 1) return null;
  let from = 0;
  for (let n = 1; n < line; n++) {
    const nl = text.indexOf("\n", from);
    if (nl < 0) return null;
    from = nl + 1;
  }
  let pos = from;
  const last = Math.max(line, endLine);
  for (let n = line; ; n++) {
    const nl = text.indexOf("\n", pos);
    if (nl < 0) return { from, to: text.length };
    if (n >= last) return { from, to: text[nl - 1] === "\r" ? nl - 1 : nl };
    pos = nl + 1;
  }
}

/** The text of lines `line..endLine`, or null when there is no such line. */
export function linesText(text: string, line: number, endLine: number): string | null {
  const range = lineRange(text, line, endLine);
  return range === null ? null : text.slice(range.from, range.to);
}

/** A finding's lines as they were when it arrived, and where they are, following edits. */
export interface Anchor {
  line: number;
  endLine: number;
  text: string;
  start: Y.RelativePosition;
  end: Y.RelativePosition;
}

export function anchorLines(ytext: Y.Text, line: number, endLine: number): Anchor | null {
  const text = ytext.toJSON();
  const range = lineRange(text, line, endLine);
  if (range === null) return null;
  return {
    line, endLine, text: text.slice(range.from, range.to),
    start: Y.createRelativePositionFromTypeIndex(ytext, range.from, 0),
    // Sticks to the range's last character, so typing just after the range is not inside it.
    end: Y.createRelativePositionFromTypeIndex(ytext, range.to, -1),
  };
}

/** Where the anchored lines are now (whatever they hold), or null when Yjs cannot tell. */
export function anchorRange(ytext: Y.Text, anchor: Anchor): Range | null {
  const doc = ytext.doc;
  if (doc === null) return null;
  const start = Y.createAbsolutePositionFromRelativePosition(anchor.start, doc);
  const end = Y.createAbsolutePositionFromRelativePosition(anchor.end, doc);
  if (start === null || end === null || start.type !== ytext || end.type !== ytext) return null;
  if (start.index > end.index) return null;
  return { from: start.index, to: end.index };
}

function wholeLines(text: string, range: Range): boolean {
  const startsLine = range.from === 0 || text[range.from - 1] === "\n";
  const next = text[range.to];
  const endsLine = range.to === text.length || next === "\n" || (next === "\r" && text[range.to + 1] === "\n");
  return startsLine && endsLine;
}

/** The anchored lines, if they still hold exactly the text they held at arrival: where
 * Yjs says they moved, else at their line numbers. */
export function locate(ytext: Y.Text, anchor: Anchor): Range | null {
  const text = ytext.toJSON();
  const moved = anchorRange(ytext, anchor);
  if (moved !== null && text.slice(moved.from, moved.to) === anchor.text && wholeLines(text, moved)) return moved;
  const there = lineRange(text, anchor.line, anchor.endLine);
  if (there !== null && text.slice(there.from, there.to) === anchor.text) return there;
  return null;
}

const FENCE = /```[^\n]*\n([\s\S]*?)\n?```/;

/** Whether a suggestion carries replacement code (a fenced block). The builtin provider's
 * suggestions are advice in words ("Use yaml.safe_load", ruff's fix descriptions): putting
 * those in place of the code would break it, so they are not offered as a fix. */
export function suggestsCode(suggestion: string | null | undefined): boolean {
  return suggestion !== null && suggestion !== undefined && FENCE.test(suggestion);
}

/** The code a suggestion proposes: the first fenced block's content when it has one, else
 * the suggestion itself, without a final line break. */
export function fixText(suggestion: string): string {
  const fence = FENCE.exec(suggestion);
  const code = fence?.[1] ?? suggestion;
  return code.replace(/\r?\n$/, "");
}

/** The replacement for `original` lines: a suggestion written without indentation takes the
 * first original line's. */
export function reindent(original: string, replacement: string): string {
  const indent = /^[ \t]*/.exec(original)?.[0] ?? "";
  if (indent === "" || /^[ \t]/.test(replacement)) return replacement;
  return replacement.split("\n").map((l) => (l.trim() === "" ? l : indent + l)).join("\n");
}

/** Replaces the anchored lines with the suggestion in one transaction (undoable from the
 * editor); false, changing nothing, when the lines changed since the finding arrived. */
export function applyFix(ytext: Y.Text, anchor: Anchor, suggestion: string): boolean {
  const range = locate(ytext, anchor);
  if (range === null) return false;
  const replacement = reindent(anchor.text, fixText(suggestion));
  const run = () => {
    ytext.delete(range.from, range.to - range.from);
    ytext.insert(range.from, replacement);
  };
  const doc = ytext.doc;
  if (doc === null) run();
  else doc.transact(run);
  return true;
}
