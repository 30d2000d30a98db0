import { describe, expect, it } from "vitest";
import { languageForPath, lineTokens, parserFor, pieces } from "./highlight";

describe("highlighting", () => {
  it("picks the language from the file name", () => {
    expect(languageForPath("app/users.py")?.name).toBe("Python");
    expect(languageForPath("src/main.ts")?.name).toBe("TypeScript");
    expect(languageForPath("Dockerfile")?.name).toBe("Dockerfile");
    expect(languageForPath("notes.unknownext")).toBeNull();
  });

  it("cuts a parse's highlighting into lines", async () => {
    const parser = await parserFor("x.py");
    if (parser === null) throw new Error("no python");
    const text = 'def f(x):\n    return "a\\nb"  # done\n\n"""doc\nstring"""';
    const tokens = lineTokens(text, parser);
    expect(tokens).toHaveLength(5);
    expect(tokens[0]?.[0]).toEqual([0, 3, "tok-keyword"]);
    const second = tokens[1] ?? [];
    expect(second.some(([, , c]) => c.includes("tok-comment"))).toBe(true);
    expect(tokens[2]).toEqual([]);
    // A token spanning lines is cut at the line end.
    expect(tokens[3]?.[0]).toEqual([0, 6, "tok-string"]);
    expect(tokens[4]?.[0]).toEqual([0, 9, "tok-string"]);
  });

  it("splits a line's text into plain and highlighted pieces", () => {
    expect(pieces("def f", [[0, 3, "k"]])).toEqual([["def", "k"], " f"]);
    expect(pieces("abc", undefined)).toEqual(["abc"]);
    expect(pieces("ab", [[1, 9, "k"]])).toEqual(["a", ["b", "k"]]);
  });
});
