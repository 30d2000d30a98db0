// The session's `language` (an API identifier such as `python`, `c++`, `shell`) as a
// CodeMirror language, loaded lazily from @codemirror/language-data.
import type { LanguageDescription, LanguageSupport } from "@codemirror/language";
import { LanguageDescription as Descriptions } from "@codemirror/language";
import { languages } from "@codemirror/language-data";

// API names that language-data does not know by themselves (null: no highlighting).
const NAMES: Record<string, string | null> = {
  plaintext: null,
  text: null,
  plain: null,
  none: null,
  txt: null,
  shell: "Shell",
  bash: "Shell",
  zsh: "Shell",
  golang: "Go",
  py: "Python",
  python3: "Python",
  "c++": "C++",
  cpp: "C++",
  cxx: "C++",
  "c#": "C#",
  csharp: "C#",
  "f#": "F#",
  "objective-c": "Objective-C",
  kt: "Kotlin",
  rs: "Rust",
  rb: "Ruby",
  yml: "YAML",
  md: "Markdown",
  dockerfile: "Dockerfile",
  postgres: "PostgreSQL",
  postgresql: "PostgreSQL",
  mysql: "MySQL",
  sqlite: "SQLite",
};

/** The language-data entry for an API language name, or null for plain text / unknown. */
export function languageFor(name: string, list: readonly LanguageDescription[] = languages): LanguageDescription | null {
  const key = name.trim().toLowerCase();
  const mapped = key in NAMES ? NAMES[key] : key;
  if (mapped === null || mapped === undefined || mapped === "") return null;
  return Descriptions.matchLanguageName(list, mapped, false);
}

/** Loads the highlighter (its own chunk); null when there is none for this name. */
export async function loadLanguage(name: string): Promise<LanguageSupport | null> {
  const description = languageFor(name);
  if (description === null) return null;
  return description.support ?? description.load();
}
