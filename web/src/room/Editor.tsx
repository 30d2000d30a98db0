// The shared document in CodeMirror 6, bound to the Y.Text "code" with y-codemirror.next.
import { defaultKeymap } from "@codemirror/commands";
import { bracketMatching, defaultHighlightStyle, indentOnInput, syntaxHighlighting } from "@codemirror/language";
import { Compartment, EditorState, type Extension } from "@codemirror/state";
import {
  drawSelection, dropCursor, EditorView, highlightActiveLine, highlightActiveLineGutter,
  highlightSpecialChars, keymap, lineNumbers,
} from "@codemirror/view";
import { useEffect, useRef } from "preact/hooks";
import { yCollab, yUndoManagerKeymap } from "y-codemirror.next";
import type { DocLink } from "./doc";
import { loadLanguage } from "./language";

function editable(readOnly: boolean): Extension {
  return [EditorState.readOnly.of(readOnly), EditorView.editable.of(!readOnly)];
}

const theme = EditorView.theme({
  "&": { height: "100%", fontSize: "14px" },
  ".cm-scroller": { fontFamily: "var(--mono, ui-monospace, SFMono-Regular, Menlo, Consolas, monospace)", lineHeight: "1.5" },
  ".cm-content": { minHeight: "100%" },
  // Remote carets carry their person's login all the time, not only on hover.
  ".cm-ySelectionInfo": { opacity: "1", fontFamily: "inherit", fontSize: "11px", borderRadius: "3px", top: "-1.35em", padding: "0 4px" },
  ".cm-ySelectionCaretDot": { display: "none" },
});

export function Editor({ link, readOnly, language }: { link: DocLink; readOnly: boolean; language: string }) {
  const host = useRef<HTMLDivElement>(null);
  const view = useRef<EditorView | null>(null);
  const access = useRef(new Compartment());
  const syntax = useRef(new Compartment());
  const readOnlyNow = useRef(readOnly);
  readOnlyNow.current = readOnly;

  useEffect(() => {
    const parent = host.current;
    if (parent === null) return;
    const editor = new EditorView({
      parent,
      state: EditorState.create({
        doc: link.ytext.toJSON(),
        extensions: [
          lineNumbers(),
          highlightActiveLineGutter(),
          highlightSpecialChars(),
          drawSelection(),
          dropCursor(),
          indentOnInput(),
          bracketMatching(),
          highlightActiveLine(),
          syntaxHighlighting(defaultHighlightStyle, { fallback: true }),
          // Tab is left to move focus on, so the keyboard never gets stuck in the editor.
          keymap.of([...yUndoManagerKeymap, ...defaultKeymap]),
          EditorView.lineWrapping,
          EditorView.contentAttributes.of({ "aria-label": "Shared document" }),
          theme,
          access.current.of(editable(readOnlyNow.current)),
          syntax.current.of([]),
          yCollab(link.ytext, link.provider.awareness, { undoManager: link.undoManager }),
        ],
      }),
    });
    view.current = editor;
    return () => {
      view.current = null;
      editor.destroy();
    };
  }, [link]);

  useEffect(() => {
    view.current?.dispatch({ effects: access.current.reconfigure(editable(readOnly)) });
  }, [readOnly, link]);

  useEffect(() => {
    let live = true;
    loadLanguage(language)
      .then((support) => {
        if (live) view.current?.dispatch({ effects: syntax.current.reconfigure(support ?? []) });
      })
      .catch(() => {
        // No highlighting is a fine fallback for a chunk that failed to load.
      });
    return () => { live = false; };
  }, [language, link]);

  return <div class="room-editor" ref={host} />;
}
