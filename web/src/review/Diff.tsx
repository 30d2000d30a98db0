// A review file's unified diff: both line numbers, syntax highlighting, expandable context,
// a comment button per line (a range by shift-click or dragging), threads between the lines
// and AI findings as diagnostics (gutter marker, underline, a tooltip on hover and focus).
//
// Large files: rows render in chunks, each a memoised component (opening a comment box
// renders one chunk again, not the file) with `content-visibility: auto`, so the browser
// lays out and paints only the chunks near the viewport — a 2,000-line file scrolls like a
// short one — while every row stays in the document for find-in-page and assistive
// technology. Only one comment button is in the Tab order; the arrow keys move between them.
import { memo } from "preact/compat";
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import {
  buildRows, commentTarget, EXPAND_STEP, expand, type DiffRow, type Expansion, type GapRow, lineKey,
  type LineRow, rangeOf, reveal, splitLines, baseExcerpt,
} from "./diff";
import type { DiffFinding } from "./findings";
import { lineTokens, parserFor, pieces, type Token } from "./highlight";
import { CommentForm, composerHint, ThreadView, type ThreadActions } from "./Thread";
import type { FileDiff, Side, Thread } from "./types";

export const CHUNK_ROWS = 64;

export interface Composer {
  side: Side;
  line: number;
  start: number | null;
}

interface Handlers {
  comment: (side: Side, line: number, shift: boolean) => void;
  expand: (row: GapRow, how: "up" | "down" | "all") => void;
  submit: (composer: Composer, body: string) => Promise<unknown>;
  cancel: () => void;
}

const SEVERITY_ORDER = { info: 0, warning: 1, error: 2 } as const;
const SEVERITY_TEXT = { info: "Info", warning: "Warning", error: "Error" } as const;

function worst(findings: readonly DiffFinding[]): DiffFinding["severity"] {
  let out: DiffFinding["severity"] = "info";
  for (const f of findings) if (SEVERITY_ORDER[f.severity] > SEVERITY_ORDER[out]) out = f.severity;
  return out;
}

/** Keeps the previous array when it holds the same items (so memoised chunks skip). */
function same<T>(a: readonly T[] | undefined, b: readonly T[]): boolean {
  return a !== undefined && a.length === b.length && a.every((x, i) => x === b[i]);
}

function Code({ text, tokens }: { text: string; tokens: readonly Token[] | undefined }) {
  return <>{pieces(text, tokens).map((p, i) => (typeof p === "string" ? p : <span key={i} class={p[1]}>{p[0]}</span>))}</>;
}

function FindingMarker({ findings, line }: { findings: readonly DiffFinding[]; line: number }) {
  const severity = worst(findings);
  const label = findings.map((f) => `${SEVERITY_TEXT[f.severity]}: ${f.message}`).join("; ");
  return (
    <span class={`cm-lint-marker cm-lint-marker-${severity} diff-finding-marker ${severity}`} tabIndex={0}
          role="img" aria-label={`AI finding. ${label}`} data-finding-line={line} />
  );
}

/** The hover and focus card of a line's findings: severity, category, message, suggestion. */
export function FindingTip({ findings, top, left }: { findings: readonly DiffFinding[]; top: number; left: number }) {
  return (
    <div class="diff-tooltip" role="tooltip" id="diff-tooltip" style={{ top: `${String(top)}px`, left: `${String(left)}px` }}>
      {findings.map((f, i) => (
        <div key={i} class={`diff-tooltip-item ${f.severity}`}>
          <span class="diff-tooltip-head">
            <strong>{SEVERITY_TEXT[f.severity]}</strong> · {f.category} · {f.line === f.endLine ? `line ${String(f.line)}` : `lines ${String(f.line)}–${String(f.endLine)}`}
          </span>
          <span class="diff-tooltip-message">{f.message}</span>
          {f.suggestion !== undefined && f.suggestion !== null && f.suggestion !== "" && (
            <>
              <span class="diff-tooltip-label">Suggestion</span>
              <pre class="diff-tooltip-suggestion">{f.suggestion}</pre>
            </>
          )}
        </div>
      ))}
    </div>
  );
}

interface ChunkProps {
  rows: readonly DiffRow[];
  first: boolean;
  canWrite: boolean;
  headTokens: readonly Token[][] | null;
  baseTokens: ReadonlyMap<number, Token[]> | null;
  threads: readonly Thread[];
  findings: readonly DiffFinding[];
  composer: Composer | null;
  selection: Composer | null;
  actions: ThreadActions;
  handlers: Handlers;
}

function LineView({ row, tabbable, p }: { row: LineRow; tabbable: boolean; p: ChunkProps }) {
  const target = commentTarget(row);
  const onFinding = row.target === null ? [] : p.findings.filter((f) => f.line === row.target);
  const under = row.target === null ? [] : p.findings.filter((f) => row.target !== null && f.line <= row.target && row.target <= Math.max(f.line, f.endLine));
  const tokens = row.type !== "del" && row.target !== null && p.headTokens !== null
    ? p.headTokens[row.target - 1]
    : row.source !== null ? p.baseTokens?.get(row.source) : undefined;
  const sel = p.selection;
  const selected = sel !== null && target !== null && sel.side === target.side
    && (sel.start ?? sel.line) <= target.line && target.line <= sel.line;
  return (
    <div class={`diff-row ${row.type}${row.expanded ? " expanded" : ""}${selected ? " selected" : ""}`}
         data-target={row.target ?? undefined} data-source={row.source ?? undefined}>
      <span class="diff-mark">{onFinding.length > 0 && row.target !== null && <FindingMarker findings={onFinding} line={row.target} />}</span>
      <span class="diff-num" aria-hidden="true">{row.source ?? ""}</span>
      <span class="diff-num" aria-hidden="true">{row.target ?? ""}</span>
      <span class="diff-act">
        {p.canWrite && target !== null && (
          <button type="button" class="diff-comment" tabIndex={tabbable ? 0 : -1}
                  aria-label={target.side === "LEFT" ? `Comment on line ${String(target.line)} (removed)` : `Comment on line ${String(target.line)}`}
                  title="Comment on this line (shift-click another line, or drag, for a range)"
                  data-side={target.side} data-line={target.line}
                  onClick={(e) => p.handlers.comment(target.side, target.line, e.shiftKey)}>+</button>
        )}
      </span>
      <span class="diff-sign" aria-hidden="true">{row.type === "add" ? "+" : row.type === "del" ? "−" : " "}</span>
      <code class={`diff-code${under.length > 0 ? ` cm-lintRange cm-lintRange-${worst(under)}` : ""}`}>
        {row.type !== "ctx" && <span class="sr-only">{row.type === "add" ? "added: " : "removed: "}</span>}
        <Code text={row.text} tokens={tokens} />
      </code>
    </div>
  );
}

function GapView({ row, handlers }: { row: GapRow; handlers: Handlers }) {
  const small = row.hidden <= EXPAND_STEP;
  return (
    <div class="diff-gap">
      <span class="diff-gap-buttons">
        {row.expandable && (small ? (
          <button type="button" class="small" onClick={() => handlers.expand(row, "all")}>
            Show {row.hidden} hidden {row.hidden === 1 ? "line" : "lines"}
          </button>
        ) : (
          <>
            {row.gap > 0 && (
              <button type="button" class="small" onClick={() => handlers.expand(row, "down")}
                      aria-label={`Show ${String(EXPAND_STEP)} more lines after line ${String(row.firstHidden - 1)}`}>↓</button>
            )}
            {row.header !== null && (
              <button type="button" class="small" onClick={() => handlers.expand(row, "up")}
                      aria-label={`Show ${String(EXPAND_STEP)} more lines before line ${String(row.lastHidden + 1)}`}>↑</button>
            )}
            <button type="button" class="small" onClick={() => handlers.expand(row, "all")}>Show all {row.hidden} lines</button>
          </>
        ))}
      </span>
      <span class="diff-hunk-header">{row.header ?? `${String(row.hidden)} unchanged ${row.hidden === 1 ? "line" : "lines"}`}</span>
    </div>
  );
}

const Chunk = memo(function Chunk(p: ChunkProps) {
  const byKey = new Map<string, Thread[]>();
  for (const t of p.threads) {
    const key = lineKey(t.side, t.line);
    const list = byKey.get(key);
    if (list === undefined) byKey.set(key, [t]);
    else list.push(t);
  }
  let tabbableDone = !p.first;
  return (
    <div class="diff-chunk" style={{ containIntrinsicSize: `auto ${String(p.rows.length * 21)}px` }}>
      {p.rows.map((row, i) => {
        if (row.kind === "gap") return <GapView key={`g${String(row.gap)}-${String(i)}`} row={row} handlers={p.handlers} />;
        const target = commentTarget(row);
        const key = target === null ? `n${String(i)}` : lineKey(target.side, target.line);
        const tabbable = !tabbableDone && p.canWrite && target !== null;
        if (tabbable) tabbableDone = true;
        const threads = [
          ...(target === null ? [] : byKey.get(key) ?? []),
          ...(row.type === "ctx" && row.source !== null ? byKey.get(lineKey("LEFT", row.source)) ?? [] : []),
        ];
        const c = p.composer;
        const composing = c !== null && target !== null && c.side === target.side && c.line === target.line;
        return (
          <div key={key} class="diff-line-group">
            <LineView row={row} tabbable={tabbable} p={p} />
            {threads.map((t) => <ThreadView key={t.id} thread={t} actions={p.actions} />)}
            {composing && (
              <div class="diff-composer">
                <CommentForm hint={composerHint(c.side, c.start, c.line)}
                             onSubmit={(body) => p.handlers.submit(c, body)} onCancel={p.handlers.cancel} />
              </div>
            )}
          </div>
        );
      })}
    </div>
  );
});

export interface DiffProps {
  file: FileDiff;
  whole: boolean;
  canWrite: boolean;
  threads: readonly Thread[];
  findings: readonly DiffFinding[];
  actions: ThreadActions;
  addThread: (c: Composer, body: string) => Promise<unknown>;
  /** A head line to bring into view (and reveal when it is hidden); a new object asks again. */
  focus?: { readonly line?: number | undefined } | undefined;
}

export function Diff({ file, whole, canWrite, threads, findings, actions, addThread, focus }: DiffProps) {
  const [expansion, setExpansion] = useState<Expansion>(new Map());
  const [composer, setComposer] = useState<Composer | null>(null);
  const [tokens, setTokens] = useState<{ head: Token[][] | null; base: Map<number, Token[]> } | null>(null);
  const anchor = useRef<{ side: Side; line: number } | null>(null);
  const drag = useRef<{ side: Side; line: number } | null>(null);
  const host = useRef<HTMLDivElement>(null);
  const [tip, setTip] = useState<{ line: number; top: number; left: number } | null>(null);
  const tipTimer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  const lines = useMemo(() => (file.content === null ? null : splitLines(file.content)), [file]);
  const rows = useMemo(() => buildRows(file, lines, expansion, whole), [file, lines, expansion, whole]);

  // A new file (or a new version of it) starts folded, without a box open.
  useEffect(() => {
    setExpansion(new Map());
    setComposer(null);
    anchor.current = null;
  }, [file]);

  // Highlighting: after the first paint, in the language's own chunk.
  useEffect(() => {
    let live = true;
    setTokens(null);
    const timer = setTimeout(() => {
      parserFor(file.path).then((parser) => {
        if (!live || parser === null) return;
        const head = file.content === null ? null : lineTokens(file.content, parser);
        const excerpt = baseExcerpt(file.hunks);
        const baseLines = lineTokens(excerpt.text, parser);
        const base = new Map<number, Token[]>();
        excerpt.lines.forEach((n, i) => base.set(n, baseLines[i] ?? []));
        setTokens({ head, base });
      }).catch(() => {
        // No highlighting is a fine fallback for a language chunk that failed to load.
      });
    }, 0);
    return () => { live = false; clearTimeout(timer); };
  }, [file]);

  const handlers = useRef<Handlers>({
    comment: () => undefined, expand: () => undefined, submit: () => Promise.resolve(), cancel: () => undefined,
  });
  handlers.current.comment = (side, line, shift) => {
    const from = shift && anchor.current !== null && anchor.current.side === side ? anchor.current.line : null;
    const range = rangeOf(from, line);
    setComposer({ side, line: range.line, start: range.start });
    if (!shift) anchor.current = { side, line };
  };
  handlers.current.expand = (row, how) => setExpansion((e) => expand(e, row, how));
  handlers.current.submit = async (c, body) => {
    await addThread(c, body);
    anchor.current = null;
  };
  handlers.current.cancel = () => setComposer(null);
  // The memoised chunks get one object whose functions always call the latest handlers.
  const stable = useMemo<Handlers>(() => ({
    comment: (...a) => handlers.current.comment(...a),
    expand: (...a) => handlers.current.expand(...a),
    submit: (...a) => handlers.current.submit(...a),
    cancel: () => handlers.current.cancel(),
  }), []);

  const chunks = useMemo(() => {
    const out: DiffRow[][] = [];
    for (let i = 0; i < rows.length; i += CHUNK_ROWS) out.push(rows.slice(i, i + CHUNK_ROWS));
    return out;
  }, [rows]);

  // Per chunk: its threads and findings, the same arrays as before when nothing changed.
  const shown = useMemo(() => {
    const keys = chunks.map((chunk) => {
      const set = new Set<string>();
      for (const row of chunk) {
        if (row.kind !== "line") continue;
        const t = commentTarget(row);
        if (t !== null) set.add(lineKey(t.side, t.line));
        // An unchanged line is also where a thread on its base line number sits.
        if (row.type === "ctx" && row.source !== null) set.add(lineKey("LEFT", row.source));
      }
      return set;
    });
    return keys;
  }, [chunks]);
  const previous = useRef<{ threads: (readonly Thread[])[]; findings: (readonly DiffFinding[])[] }>({ threads: [], findings: [] });
  const perChunk = useMemo(() => {
    const threadLists: (readonly Thread[])[] = [];
    const findingLists: (readonly DiffFinding[])[] = [];
    chunks.forEach((chunk, i) => {
      const keys = shown[i] ?? new Set<string>();
      const mine = threads.filter((t) => keys.has(lineKey(t.side, t.line)));
      const targets = chunk.flatMap((r) => (r.kind === "line" && r.target !== null ? [r.target] : []));
      const lo = targets.length === 0 ? Infinity : Math.min(...targets);
      const hi = targets.length === 0 ? -Infinity : Math.max(...targets);
      const found = findings.filter((f) => f.line <= hi && Math.max(f.line, f.endLine) >= lo);
      const before = previous.current;
      threadLists.push(same(before.threads[i], mine) ? before.threads[i] ?? mine : mine);
      findingLists.push(same(before.findings[i], found) ? before.findings[i] ?? found : found);
    });
    previous.current = { threads: threadLists, findings: findingLists };
    return { threads: threadLists, findings: findingLists };
  }, [chunks, shown, threads, findings]);

  // Threads whose line this view does not show (folded away, or moved by a push).
  const elsewhere = useMemo(() => {
    const all = new Set<string>();
    for (const set of shown) for (const k of set) all.add(k);
    return threads.filter((t) => !all.has(lineKey(t.side, t.line)));
  }, [shown, threads]);

  // Bring a requested line into view, revealing it when it is folded.
  const focused = useRef<object | null>(null);
  const focusLine = focus?.line;
  useEffect(() => {
    if (focus === undefined || focusLine === undefined) { focused.current = null; return; }
    if (focused.current === focus) return;
    const visible = rows.some((r) => r.kind === "line" && r.target === focusLine);
    if (!visible) {
      const next = reveal(expansion, rows, focusLine);
      if (next !== expansion) { setExpansion(next); return; }
    }
    focused.current = focus;
    const el = host.current?.querySelector<HTMLElement>(`.diff-row[data-target="${String(focusLine)}"]`);
    if (el === null || el === undefined) return;
    el.scrollIntoView({ block: "center" });
    el.classList.add("flash");
    const timer = setTimeout(() => el.classList.remove("flash"), 1700);
    return () => clearTimeout(timer);
  }, [focus, rows, expansion]);

  function onKeyDown(e: KeyboardEvent) {
    const target = e.target as HTMLElement | null;
    if (target === null || !target.classList.contains("diff-comment")) return;
    if (e.key !== "ArrowDown" && e.key !== "ArrowUp" && e.key !== "Home" && e.key !== "End") return;
    const all = [...(host.current?.querySelectorAll<HTMLButtonElement>("button.diff-comment") ?? [])];
    const at = all.indexOf(target as HTMLButtonElement);
    const to = e.key === "Home" ? 0 : e.key === "End" ? all.length - 1 : at + (e.key === "ArrowDown" ? 1 : -1);
    const next = all[to];
    if (next === undefined) return;
    e.preventDefault();
    for (const b of all) if (b.tabIndex === 0) b.tabIndex = -1;
    next.tabIndex = 0;
    next.focus();
  }

  function buttonOf(e: PointerEvent): { side: Side; line: number } | null {
    const el = (e.target as HTMLElement | null)?.closest<HTMLElement>("button.diff-comment");
    if (el === null || el === undefined) return null;
    const side = el.dataset.side === "LEFT" ? "LEFT" : "RIGHT";
    return { side, line: Number(el.dataset.line) };
  }

  function markerOf(e: Event): HTMLElement | null {
    return (e.target as HTMLElement | null)?.closest<HTMLElement>("[data-finding-line]") ?? null;
  }
  function showTip(marker: HTMLElement) {
    const box = host.current;
    if (box === null) return;
    clearTimeout(tipTimer.current);
    const at = marker.getBoundingClientRect();
    const frame = box.getBoundingClientRect();
    setTip({
      line: Number(marker.dataset.findingLine),
      top: at.bottom - frame.top + box.scrollTop + 4,
      left: Math.max(4, at.left - frame.left + box.scrollLeft),
    });
    marker.setAttribute("aria-describedby", "diff-tooltip");
  }
  function hideTip(soon: boolean) {
    clearTimeout(tipTimer.current);
    if (soon) tipTimer.current = setTimeout(() => setTip(null), 250);
    else setTip(null);
  }
  useEffect(() => () => clearTimeout(tipTimer.current), []);
  const tipFindings = tip === null ? [] : findings.filter((f) => f.line === tip.line);

  const selection = composer;
  return (
    <div class="diff" ref={host}
         onKeyDown={(e) => { if (e.key === "Escape" && tip !== null) hideTip(false); onKeyDown(e); }}
         onMouseOver={(e) => {
           const marker = markerOf(e);
           if (marker !== null) showTip(marker);
           else if ((e.target as HTMLElement).closest(".diff-tooltip") !== null) clearTimeout(tipTimer.current);
         }}
         onMouseOut={(e) => { if (markerOf(e) !== null || (e.target as HTMLElement).closest(".diff-tooltip") !== null) hideTip(true); }}
         onFocusIn={(e) => { const marker = markerOf(e); if (marker !== null) showTip(marker); }}
         onFocusOut={(e) => { if (markerOf(e) !== null) hideTip(false); }}
         onPointerDown={(e) => { if (e.button === 0 && !e.shiftKey) drag.current = buttonOf(e); }}
         onPointerUp={(e) => {
           const from = drag.current;
           drag.current = null;
           const to = buttonOf(e);
           if (from === null || to === null || from.side !== to.side || from.line === to.line) return;
           const range = rangeOf(from.line, to.line);
           anchor.current = from;
           setComposer({ side: to.side, line: range.line, start: range.start });
         }}>
      {rows.length === 0 && (
        <p class="diff-empty muted">{file.patch === "" ? "GitHub shows no text diff for this file (binary, or too large)." : "No changed lines."}</p>
      )}
      {chunks.map((chunk, i) => {
        const c = composer !== null && (shown[i]?.has(lineKey(composer.side, composer.line)) ?? false) ? composer : null;
        const s = selection !== null && chunk.some((r) => {
          if (r.kind !== "line") return false;
          const t = commentTarget(r);
          return t !== null && t.side === selection.side && (selection.start ?? selection.line) <= t.line && t.line <= selection.line;
        }) ? selection : null;
        return (
          <Chunk key={i} rows={chunk} first={i === 0} canWrite={canWrite}
                 headTokens={tokens?.head ?? null} baseTokens={tokens?.base ?? null}
                 threads={perChunk.threads[i] ?? []} findings={perChunk.findings[i] ?? []}
                 composer={c} selection={s} actions={actions} handlers={stable} />
        );
      })}
      {tip !== null && tipFindings.length > 0 && <FindingTip findings={tipFindings} top={tip.top} left={tip.left} />}
      {elsewhere.length > 0 && (
        <section class="diff-elsewhere" aria-label="Threads on lines not shown">
          <h3>Threads on lines not shown here</h3>
          {elsewhere.map((t) => {
            const folded = t.side === "RIGHT" && rows.some((r) => r.kind === "gap" && r.expandable && r.firstHidden <= t.line && t.line <= r.lastHidden);
            return (
              <div key={t.id} class="diff-elsewhere-item">
                {folded && (
                  <button type="button" class="small" onClick={() => setExpansion((e) => reveal(e, rows, t.line))}>
                    Show line {t.line}
                  </button>
                )}
                <ThreadView thread={t} actions={actions} />
              </div>
            );
          })}
        </section>
      )}
    </div>
  );
}
