import { describe, expect, it } from "vitest";
import * as Y from "yjs";
import { type Anchor, anchorLines, applyFix, fixText, lineRange, linesText, locate, reindent } from "./fix";

function anchored(t: Y.Text, line: number, endLine: number): Anchor {
  const anchor = anchorLines(t, line, endLine);
  if (anchor === null) throw new Error("no such line");
  return anchor;
}

function text(content: string): Y.Text {
  const doc = new Y.Doc();
  const t = doc.getText("code");
  t.insert(0, content);
  return t;
}

describe("fix", () => {
  it("finds the offsets of lines", () => {
    const src = "a\nbb\nccc\n";
    expect(lineRange(src, 1, 1)).toEqual({ from: 0, to: 1 });
    expect(linesText(src, 2, 3)).toBe("bb\nccc");
    expect(linesText(src, 4, 4)).toBe("");
    expect(lineRange(src, 5, 5)).toBeNull();
    expect(linesText("x\r\ny", 1, 1)).toBe("x");
    expect(linesText(src, 3, 1)).toBe("ccc");
  });

  it("replaces the finding's lines when they still hold what they held", () => {
    const t = text("import os\nx = eval(s)\nprint(x)\n");
    const anchor = anchored(t, 2, 2);
    expect(anchor.text).toBe("x = eval(s)");
    // Someone adds a line above: the anchor follows the lines.
    t.insert(0, "# top\n");
    expect(applyFix(t, anchor, "x = ast.literal_eval(s)")).toBe(true);
    expect(t.toJSON()).toBe("# top\nimport os\nx = ast.literal_eval(s)\nprint(x)\n");
  });

  it("refuses when the lines changed since the finding arrived", () => {
    const t = text("a\nb = 1\nc\n");
    const anchor = anchored(t, 2, 2);
    t.insert(3, "2"); // "b2 = 1"
    expect(locate(t, anchor)).toBeNull();
    expect(applyFix(t, anchor, "b = 3")).toBe(false);
    expect(t.toJSON()).toBe("a\nb2 = 1\nc\n");
  });

  it("takes the code of a fenced suggestion and keeps the indentation", () => {
    expect(fixText("Use this:\n```python\nvalue = 1\n```\n")).toBe("value = 1");
    expect(fixText("y = 2\n")).toBe("y = 2");
    expect(reindent("    x = eval(s)", "x = 1\ny = 2")).toBe("    x = 1\n    y = 2");
    expect(reindent("    x", "  x")).toBe("  x");
    const t = text("def f():\n    return eval(s)\n");
    expect(applyFix(t, anchored(t, 2, 2), "return ast.literal_eval(s)")).toBe(true);
    expect(t.toJSON()).toBe("def f():\n    return ast.literal_eval(s)\n");
  });
});
