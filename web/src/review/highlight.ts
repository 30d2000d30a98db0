// Syntax highlighting for the diff through CodeMirror's language support (the editor's one
// highlighter): the language from the file name (@codemirror/language-data), a Lezer parse
// of the text, and highlightTree with @lezer/highlight's class highlighter (`tok-*` classes,
// coloured in review.css like the editor's default style), cut into lines.
import type { Language, LanguageDescription } from "@codemirror/language";
import { LanguageDescription as Descriptions } from "@codemirror/language";
import { languages } from "@codemirror/language-data";
import { classHighlighter, highlightTree, type Highlighter } from "@lezer/highlight";

type Parser = Language["parser"];

/** A highlighted stretch of one line: [from, to) in the line's characters, CSS classes. */
export type Token = readonly [from: number, to: number, classes: string];

/** Texts longer than this are shown without highlighting (parsing them would stall). */
export const MAX_HIGHLIGHT_CHARS = 1_000_000;

export function languageForPath(path: string, list: readonly LanguageDescription[] = languages): LanguageDescription | null {
  const name = path.split("/").pop() ?? path;
  return Descriptions.matchFilename(list, name);
}

/** The parser for a file path, loading its language's chunk; null when there is none. */
export async function parserFor(path: string): Promise<Parser | null> {
  const description = languageForPath(path);
  if (description === null) return null;
  const support = description.support ?? await description.load();
  return support.language.parser;
}

/** The tokens of each line of `text` (index 0 is line 1). */
export function lineTokens(text: string, parser: Parser, style: Highlighter = classHighlighter): Token[][] {
  const starts = [0];
  for (let i = text.indexOf("\n"); i >= 0; i = text.indexOf("\n", i + 1)) starts.push(i + 1);
  const out: Token[][] = starts.map(() => []);
  if (text.length > MAX_HIGHLIGHT_CHARS) return out;
  const tree = parser.parse(text);
  let line = 0;
  highlightTree(tree, style, (from, to, classes) => {
    while (line + 1 < starts.length && (starts[line + 1] ?? Infinity) <= from) line++;
    let at = from;
    let l = line;
    while (at < to && l < starts.length) {
      const start = starts[l] ?? 0;
      const next = starts[l + 1];
      const end = next === undefined ? text.length : next - 1; // the "\n" belongs to no token
      const stop = Math.min(to, end);
      if (stop > at) out[l]?.push([at - start, stop - start, classes]);
      if (to <= end) break;
      l++;
      at = starts[l] ?? to;
    }
  });
  return out;
}

/** A line's text cut at its tokens: plain strings and [text, classes] pieces. */
export function pieces(text: string, tokens: readonly Token[] | undefined): (string | readonly [string, string])[] {
  if (tokens === undefined || tokens.length === 0) return [text];
  const out: (string | readonly [string, string])[] = [];
  let at = 0;
  for (const [from, to, classes] of tokens) {
    if (from >= text.length) break;
    if (from > at) out.push(text.slice(at, from));
    const stop = Math.min(to, text.length);
    if (stop > Math.max(from, at)) out.push([text.slice(Math.max(from, at), stop), classes]);
    at = Math.max(at, stop);
  }
  if (at < text.length) out.push(text.slice(at));
  return out;
}
