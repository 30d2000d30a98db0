// What the editor lets a person do: edit, or only read. A read-only editor still takes the
// keyboard focus (Tab reaches it; arrows and Shift+arrows select; Ctrl+C copies), and
// nothing typed into it changes the shared document, y-codemirror's undo and redo included.
import { EditorState, type Extension, Prec } from "@codemirror/state";
import { EditorView, type KeyBinding } from "@codemirror/view";
import { yUndoManagerKeymap } from "y-codemirror.next";

/** The editor's access: `readOnly` (aria-readonly, no contenteditable) yet focusable. */
export function access(readOnly: boolean): Extension {
  return [
    EditorState.readOnly.of(readOnly),
    EditorView.editable.of(!readOnly),
    // Without contenteditable the content is not focusable by itself.
    readOnly ? EditorView.contentAttributes.of({ tabindex: "0" }) : [],
  ];
}

/** y-codemirror's undo/redo keys, which undo on the Y.Text itself and so ignore `readOnly`:
 * here they do nothing (but still keep the key from the browser) in a read-only editor. */
export const undoKeymap: readonly KeyBinding[] = yUndoManagerKeymap.map((binding) => {
  const { run } = binding;
  return {
    ...binding,
    run: run === undefined ? undefined : (view: EditorView) => view.state.readOnly || run(view),
  };
});

/** The same for the browser's own undo and redo (an Edit menu, a shake-to-undo): y-codemirror
 * answers `beforeinput` historyUndo/historyRedo with its undo manager. */
export const readOnlyHistoryGuard: Extension = Prec.highest(EditorView.domEventHandlers({
  beforeinput(event, view) {
    if (!view.state.readOnly) return false;
    if (event.inputType !== "historyUndo" && event.inputType !== "historyRedo") return false;
    event.preventDefault();
    return true;
  },
}));
