// The shared document in CodeMirror 6, bound to the Y.Text "code" with y-codemirror.next.
import { defaultKeymap } from "@codemirror/commands";
import { bracketMatching, defaultHighlightStyle, indentOnInput, syntaxHighlighting } from "@codemirror/language";
import { lintGutter } from "@codemirror/lint";
import { Compartment, EditorState } from "@codemirror/state";
import {
  drawSelection, dropCursor, EditorView, highlightActiveLine, highlightActiveLineGutter,
  highlightSpecialChars, keymap, lineNumbers,
} from "@codemirror/view";
import { useEffect, useRef } from "preact/hooks";
import { yCollab } from "y-codemirror.next";
import type { DocLink } from "./doc";
import { access, readOnlyHistoryGuard, undoKeymap } from "./editing";
import { loadLanguage } from "./language";

/** Whether the editor's content holds the keyboard focus (whether or not the window does). */
function focused(editor: EditorView): boolean {
  return editor.root.activeElement === editor.contentDOM;
}

const theme = EditorView.theme({
  "&": { height: "100%", fontSize: "14px" },
  ".cm-scroller": { fontFamily: "var(--mono, ui-monospace, SFMono-Regular, Menlo, Consolas, monospace)", lineHeight: "1.5" },
  ".cm-content": { minHeight: "100%" },
  // Remote carets carry their person's login all the time, not only on hover.
  ".cm-ySelectionInfo": { opacity: "1", fontFamily: "inherit", fontSize: "11px", borderRadius: "3px", top: "-1.35em", padding: "0 4px" },
  ".cm-ySelectionCaretDot": { display: "none" },
});

export function Editor({ link, readOnly, language, onView }: {
  link: DocLink; readOnly: boolean; language: string;
  /** Told the editor's view when it is made and null when it goes (AI diagnostics use it). */
  onView?: (view: EditorView | null) => void;
}) {
  const host = useRef<HTMLDivElement>(null);
  const view = useRef<EditorView | null>(null);
  const accessMode = useRef(new Compartment());
  const syntax = useRef(new Compartment());
  const readOnlyNow = useRef(readOnly);
  readOnlyNow.current = readOnly;
  const onViewNow = useRef(onView);
  onViewNow.current = onView;

  useEffect(() => {
    const parent = host.current;
    if (parent === null) return;
    const editor = new EditorView({
      parent,
      state: EditorState.create({
        doc: link.ytext.toJSON(),
        extensions: [
          lineNumbers(),
          lintGutter(),
          highlightActiveLineGutter(),
          highlightSpecialChars(),
          drawSelection(),
          dropCursor(),
          indentOnInput(),
          bracketMatching(),
          highlightActiveLine(),
          syntaxHighlighting(defaultHighlightStyle, { fallback: true }),
          // Tab is left to move focus on, so the keyboard never gets stuck in the editor.
          keymap.of([...undoKeymap, ...defaultKeymap]),
          readOnlyHistoryGuard,
          EditorView.lineWrapping,
          EditorView.contentAttributes.of({ "aria-label": "Shared document" }),
          theme,
          accessMode.current.of(access(readOnlyNow.current)),
          syntax.current.of([]),
          yCollab(link.ytext, link.provider.awareness, { undoManager: link.undoManager }),
        ],
      }),
    });
    view.current = editor;
    onViewNow.current?.(editor);
    return () => {
      view.current = null;
      onViewNow.current?.(null);
      editor.destroy();
    };
  }, [link]);

  useEffect(() => {
    const editor = view.current;
    if (editor === null) return;
    const hadFocus = focused(editor);
    editor.dispatch({ effects: accessMode.current.reconfigure(access(readOnly)) });
    if (!hadFocus) return;
    // Made read-only (a live role change, the session ending) while the person was in it:
    // the content stops being contenteditable, and the browser may drop the focus to <body>
    // then or at its next rendering. It stays on the editor, now focusable by its tabindex.
    if (!focused(editor)) editor.focus();
    const frame = requestAnimationFrame(() => {
      const active = editor.root.activeElement;
      if (view.current === editor && (active === null || active === document.body)) editor.focus();
    });
    return () => cancelAnimationFrame(frame);
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
