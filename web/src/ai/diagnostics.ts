// Document findings as CodeMirror lint diagnostics in the shared editor (gutter marker,
// underline, hover with the message and the suggestion), and review findings in the shape
// the review diff renders (`findingsSlot`).
import { type Diagnostic, setDiagnostics } from "@codemirror/lint";
import type { Text } from "@codemirror/state";
import type { EditorView } from "@codemirror/view";
import type { DiffFinding } from "../review/findings";
import type { Range } from "./fix";
import type { JobFinding } from "./jobs";

export interface Placed {
  finding: JobFinding;
  /** Where its lines are now, when known (they follow edits); else its line numbers. */
  range: Range | null;
}

/** The hover's content: message, then the suggestion as preformatted text (never HTML). */
export function renderFinding(finding: JobFinding): HTMLElement {
  const box = document.createElement("div");
  box.className = "ai-diagnostic";
  const message = document.createElement("div");
  message.className = "ai-diagnostic-message";
  message.textContent = finding.message;
  box.append(message);
  if (finding.suggestion !== null && finding.suggestion !== undefined && finding.suggestion !== "") {
    const label = document.createElement("div");
    label.className = "ai-diagnostic-label";
    label.textContent = "Suggestion";
    const pre = document.createElement("pre");
    pre.className = "ai-diagnostic-suggestion";
    pre.textContent = finding.suggestion;
    box.append(label, pre);
  }
  return box;
}

function lineSpan(doc: Text, line: number, endLine: number): Range {
  const first = doc.line(Math.min(Math.max(1, line), doc.lines));
  const last = doc.line(Math.min(Math.max(first.number, endLine), doc.lines));
  return { from: first.from, to: last.to };
}

export function toDiagnostics(doc: Text, placed: readonly Placed[]): Diagnostic[] {
  const out: Diagnostic[] = [];
  for (const { finding, range } of placed) {
    const span = range !== null && range.to <= doc.length ? range : lineSpan(doc, finding.line, finding.end_line);
    out.push({
      from: span.from,
      to: span.to,
      severity: finding.severity,
      source: finding.category !== "" ? `AI · ${finding.category}` : "AI",
      message: finding.suggestion ? `${finding.message}\nSuggestion: ${finding.suggestion}` : finding.message,
      renderMessage: () => renderFinding(finding),
      markClass: "ai-lint-range",
    });
  }
  return out.sort((a, b) => a.from - b.from || a.to - b.to);
}

/** Shows these findings in the editor, replacing the diagnostics it had. */
export function showInEditor(view: EditorView, placed: readonly Placed[]): void {
  view.dispatch(setDiagnostics(view.state, toDiagnostics(view.state.doc, placed)));
}

export function toDiffFinding(finding: JobFinding): DiffFinding {
  return {
    line: finding.line, endLine: finding.end_line, severity: finding.severity,
    message: finding.message, suggestion: finding.suggestion ?? null, category: finding.category,
  };
}
