// The notes field: CodeMirror bound to the Y.Text, with remote carets and selections. Each
// paragraph sets its own direction (an Arabic line under an English one reads right to left).
import { Compartment, EditorState, RangeSetBuilder } from '@codemirror/state'
import { Decoration, EditorView, ViewPlugin, keymap } from '@codemirror/view'
import { defaultKeymap } from '@codemirror/commands'
import { yCollab, yUndoManagerKeymap } from 'y-codemirror.next'
import * as Y from 'yjs'

const autoDirection = Decoration.line({ attributes: { dir: 'auto' } })

function paragraphDirections (view) {
  const builder = new RangeSetBuilder()
  for (const { from, to } of view.visibleRanges) {
    for (let at = from; at <= to;) {
      const line = view.state.doc.lineAt(at)
      builder.add(line.from, line.from, autoDirection)
      at = line.to + 1
    }
  }
  return builder.finish()
}

const perParagraphDirection = ViewPlugin.fromClass(class {
  constructor (view) { this.decorations = paragraphDirections(view) }
  update (update) {
    if (update.docChanged || update.viewportChanged) this.decorations = paragraphDirections(update.view)
  }
}, { decorations: (plugin) => plugin.decorations })

export class NotesEditor {
  constructor (parent, ytext, awareness, readOnly, label, undoManager = new Y.UndoManager(ytext)) {
    this.editable = new Compartment()
    this.view = new EditorView({
      parent,
      state: EditorState.create({
        doc: ytext.toString(),
        extensions: [
          keymap.of([...yUndoManagerKeymap, ...defaultKeymap]),
          EditorView.lineWrapping,
          EditorView.perLineTextDirection.of(true),
          perParagraphDirection,
          EditorView.contentAttributes.of({ 'aria-multiline': 'true', role: 'textbox', 'aria-label': label }),
          this.editable.of(editability(readOnly)),
          yCollab(ytext, awareness, { undoManager }),
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
