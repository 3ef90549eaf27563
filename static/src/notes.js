// The notes field: CodeMirror bound to the Y.Text, with remote carets and selections.
import { Compartment, EditorState } from '@codemirror/state'
import { EditorView, keymap } from '@codemirror/view'
import { defaultKeymap } from '@codemirror/commands'
import { yCollab, yUndoManagerKeymap } from 'y-codemirror.next'
import * as Y from 'yjs'

export class NotesEditor {
  constructor (parent, ytext, awareness, readOnly, label) {
    this.editable = new Compartment()
    this.view = new EditorView({
      parent,
      state: EditorState.create({
        doc: ytext.toString(),
        extensions: [
          keymap.of([...yUndoManagerKeymap, ...defaultKeymap]),
          EditorView.lineWrapping,
          EditorView.perLineTextDirection.of(true),
          EditorView.contentAttributes.of({ dir: 'auto', 'aria-multiline': 'true', role: 'textbox', 'aria-label': label }),
          this.editable.of(editability(readOnly)),
          yCollab(ytext, awareness, { undoManager: new Y.UndoManager(ytext) }),
        ],
      }),
    })
  }

  setReadOnly (readOnly) {
    this.view.dispatch({ effects: this.editable.reconfigure(editability(readOnly)) })
  }

  destroy () {
    this.view.destroy()
  }
}

function editability (readOnly) {
  return [EditorState.readOnly.of(readOnly), EditorView.editable.of(!readOnly)]
}
