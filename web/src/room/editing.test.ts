import { Compartment, EditorState } from "@codemirror/state";
import { EditorView, keymap, runScopeHandlers } from "@codemirror/view";
import { afterEach, describe, expect, it } from "vitest";
import { yCollab } from "y-codemirror.next";
import * as Y from "yjs";
import { access, readOnlyHistoryGuard, undoKeymap } from "./editing";

describe("the editor's access", () => {
  const views: EditorView[] = [];
  afterEach(() => {
    for (const view of views.splice(0)) view.destroy();
  });

  function editor(readOnly: boolean) {
    const doc = new Y.Doc();
    const ytext = doc.getText("code");
    const undoManager = new Y.UndoManager(ytext);
    const mode = new Compartment();
    const view = new EditorView({
      parent: document.body,
      state: EditorState.create({
        doc: "",
        extensions: [
          keymap.of(undoKeymap),
          readOnlyHistoryGuard,
          mode.of(access(readOnly)),
          yCollab(ytext, null, { undoManager }),
        ],
      }),
    });
    views.push(view);
    // An edit of this person's, made while they could still edit (tracked by the undo manager).
    ytext.insert(0, "print('hi')\n");
    undoManager.stopCapturing();
    const setReadOnly = (value: boolean) => view.dispatch({ effects: mode.reconfigure(access(value)) });
    return { view, ytext, undoManager, setReadOnly };
  }

  function press(view: EditorView, key: string, mod = true): boolean {
    const event = new KeyboardEvent("keydown", { key, ctrlKey: mod, metaKey: false, bubbles: true, cancelable: true });
    return runScopeHandlers(view, event, "editor");
  }

  it("a read-only editor is focusable, says it is read-only and is not contenteditable", () => {
    const { view, setReadOnly } = editor(true);
    expect(view.contentDOM.getAttribute("tabindex")).toBe("0");
    expect(view.contentDOM.getAttribute("aria-readonly")).toBe("true");
    expect(view.contentDOM.getAttribute("contenteditable")).toBe("false");
    setReadOnly(false);
    expect(view.contentDOM.getAttribute("tabindex")).toBeNull();
    expect(view.contentDOM.getAttribute("aria-readonly")).toBeNull();
    expect(view.contentDOM.getAttribute("contenteditable")).toBe("true");
  });

  it("undo and redo keys do not change the shared document while read-only", () => {
    const { view, ytext, setReadOnly } = editor(false);
    setReadOnly(true);
    expect(press(view, "z")).toBe(true); // taken, so the browser does nothing either
    expect(ytext.toJSON()).toBe("print('hi')\n");
    setReadOnly(false);
    press(view, "z");
    expect(ytext.toJSON()).toBe("");
    setReadOnly(true);
    press(view, "y");
    press(view, "Z");
    expect(ytext.toJSON()).toBe("");
    setReadOnly(false);
    press(view, "y");
    expect(ytext.toJSON()).toBe("print('hi')\n");
  });

  it("the browser's own undo (beforeinput historyUndo) is refused while read-only", () => {
    const { view, ytext } = editor(true);
    const event = new InputEvent("beforeinput", { inputType: "historyUndo", bubbles: true, cancelable: true });
    view.contentDOM.dispatchEvent(event);
    expect(event.defaultPrevented).toBe(true);
    expect(ytext.toJSON()).toBe("print('hi')\n");
  });
});
