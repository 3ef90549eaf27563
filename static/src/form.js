// The IEP form: DOM bound to the Y document (schema 2), field by field, without re-rendering
// what the user is typing in (a remote change only touches the controls it changed).
import * as Y from 'yjs'
import { label, language, t, onLanguageChange } from './i18n.js'
import {
  GOAL_STATUSES, ITEM_TEXT_FIELDS, LIST_SECTIONS, STUDENT_FIELDS, STUDENT_TEXT_FIELDS, addItem,
  fieldText, itemId, list, meta, moveItem, notes, removeItem, student, text,
} from './schema.js'
import { NotesEditor } from './notes.js'
import { bindText } from './text-binding.js'

const ADD_LABELS = { goals: 'addGoal', accommodations: 'addAccommodation', services: 'addService' }
const MULTILINE = new Set(['baseline', 'target', 'details'])
const NUMBER_FIELDS = new Set(['minutesPerSession'])

let controlCounter = 0

// Dispatched when a remote value is written into a control (setting .value fires no event).
const VALUE_SHOWN = 'valueshown'

/** Write a remote single value into a control, keeping the caret if the user is in it. */
function showValue (control, value) {
  if (control.value === value) return
  queueMicrotask(() => control.dispatchEvent(new Event(VALUE_SHOWN)))
  if (document.activeElement === control && 'selectionStart' in control && control.type === 'text') {
    const { selectionStart, selectionEnd } = control
    control.value = value
    control.setSelectionRange(Math.min(selectionStart, value.length), Math.min(selectionEnd, value.length))
  } else {
    control.value = value
  }
}

/** The browser draws a date input in its own locale: the date is also said in the page's. */
function dateInWords (control) {
  const words = document.createElement('small')
  words.className = 'date-in-words'
  const show = () => {
    const iso = control.value
    words.textContent = /^\d{4}-\d{2}-\d{2}$/.test(iso)
      ? new Date(`${iso}T00:00:00Z`).toLocaleDateString(language(), { dateStyle: 'long', timeZone: 'UTC' })
      : ''
  }
  control.addEventListener('change', show)
  control.addEventListener('input', show)
  control.addEventListener(VALUE_SHOWN, show)
  onLanguageChange(show)
  queueMicrotask(show)
  return words
}

/** Arabic-Indic and Eastern Arabic digits read as the digits they are. */
export function parseCount (value) {
  const latin = value.trim().replace(/[\u0660-\u0669]/g, (d) => String(d.charCodeAt(0) - 0x0660))
    .replace(/[\u06f0-\u06f9]/g, (d) => String(d.charCodeAt(0) - 0x06f0))
  if (latin === '') return { ok: true, value: null }
  if (!/^\d{1,4}$/.test(latin)) return { ok: false }
  return { ok: true, value: Number(latin) }
}

function fieldRow (labelKey, fieldPath, control) {
  const row = document.createElement('div')
  row.className = 'field'
  row.dataset.field = fieldPath
  control.id = `control-${++controlCounter}`
  control.name = fieldPath
  const caption = label('label', labelKey)
  caption.htmlFor = control.id
  const presence = document.createElement('span')
  presence.className = 'field-presence'
  presence.dataset.presenceFor = fieldPath
  row.append(caption, control, presence)
  return row
}

function textControl (field, { wraps = false } = {}) {
  const control = document.createElement(MULTILINE.has(field) || wraps ? 'textarea' : 'input')
  if (control.tagName === 'INPUT') control.type = field === 'dateOfBirth' ? 'date' : 'text'
  if (NUMBER_FIELDS.has(field)) control.inputMode = 'numeric'
  control.dir = 'auto'
  if (control.tagName === 'TEXTAREA') control.rows = MULTILINE.has(field) ? 2 : 1
  if (wraps) {
    // An item's title wraps like text but stays one paragraph.
    control.classList.add('one-line')
    control.addEventListener('keydown', (event) => { if (event.key === 'Enter') event.preventDefault() })
  }
  return control
}

function selectControl (options, labelPrefix) {
  const control = document.createElement('select')
  for (const value of options) {
    const option = document.createElement('option')
    option.value = value
    option.dataset.i18n = `${labelPrefix}${value}`
    option.textContent = t(`${labelPrefix}${value}`)
    control.append(option)
  }
  return control
}

/** A single value (a choice, a date, a number) in one key of a Y.Map: last writer wins. */
function bindValue (doc, map, key, control, origin) {
  const numeric = NUMBER_FIELDS.has(key)
  showValue(control, text(map.get(key)))
  const push = () => {
    if (!numeric) {
      doc.transact(() => map.set(key, control.value), origin)
      return
    }
    const parsed = parseCount(control.value)
    control.setAttribute('aria-invalid', String(!parsed.ok))
    control.title = parsed.ok ? '' : t('numberOnly')
    if (!parsed.ok) return
    doc.transact(() => (parsed.value === null ? map.delete(key) : map.set(key, parsed.value)), origin)
  }
  control.addEventListener(control.tagName === 'SELECT' || control.type === 'date' ? 'change' : 'input', push)
  const observer = (event) => {
    if (event.keysChanged.has(key) && control.getAttribute('aria-invalid') !== 'true') {
      showValue(control, text(map.get(key)))
    }
  }
  map.observe(observer)
  return () => map.unobserve(observer)
}

/** A free-text field: a Y.Text bound keystroke by keystroke; a field an older writer left
 * as a plain string stays a single value (creating its Y.Text now could race another). */
function bindField (doc, map, key, control, origin) {
  const value = map.get(key)
  if (value instanceof Y.Text) return bindText(control, value, origin)
  return bindValue(doc, map, key, control, origin)
}

function sectionShell (key, headingKey) {
  const shell = document.createElement('section')
  shell.className = 'card section'
  shell.dataset.section = key
  shell.append(label('h2', headingKey))
  const body = document.createElement('div')
  body.className = 'section-body'
  shell.append(body)
  return { shell, body }
}

export class IepForm {
  constructor (doc, awareness, container, { readOnly, onRendered, origin, undoManager, onRemove }) {
    this.doc = doc
    this.awareness = awareness
    this.readOnly = readOnly
    this.onRendered = onRendered
    this.origin = origin
    this.undoManager = undoManager
    this.onRemove = onRemove
    this.notes = null
    this.container = container

    const order = [
      ['meta', 'meta'], ['student', 'student'], ['goals', 'goals'],
      ['accommodations', 'accommodations'], ['services', 'services'], ['notes', 'notes'],
    ]
    for (const [key, heading] of order) {
      const { shell, body } = sectionShell(key, heading)
      container.append(shell)
      if (key === 'meta') this.renderMeta(body)
      else if (key === 'student') this.renderStudent(body)
      else if (key === 'notes') this.renderNotes(body)
      else this.renderList(key, body)
    }
    this.applyReadOnly()
    onLanguageChange(() => this.applyReadOnly())
  }

  renderMeta (body) {
    const title = textControl('title')
    const language = selectControl(['ar', 'en'], 'lang_')
    bindText(title, fieldText(this.doc, 'meta', 'title'), this.origin)
    bindValue(this.doc, meta(this.doc), 'language', language, this.origin)
    body.replaceChildren(
      fieldRow('title', 'meta/title', title),
      fieldRow('documentLanguage', 'meta/language', language),
    )
  }

  renderStudent (body) {
    body.replaceChildren(...STUDENT_FIELDS.map((field) => {
      const control = textControl(field)
      if (STUDENT_TEXT_FIELDS.includes(field)) bindText(control, fieldText(this.doc, 'student', field), this.origin)
      else bindValue(this.doc, student(this.doc), field, control, this.origin)
      const row = fieldRow(field, `student/${field}`, control)
      if (control.type === 'date') row.append(dateInWords(control))
      return row
    }))
  }

  renderNotes (body) {
    const mount = document.createElement('div')
    mount.className = 'notes-editor'
    const row = document.createElement('div')
    row.className = 'field'
    row.dataset.field = 'notes'
    const presence = document.createElement('span')
    presence.className = 'field-presence'
    presence.dataset.presenceFor = 'notes'
    row.append(mount, presence)
    body.replaceChildren(row)
    this.notes = new NotesEditor(mount, notes(this.doc), this.awareness, this.readOnly, t('notes'), this.undoManager)
  }

  renderList (key, body) {
    const array = list(this.doc, key)
    const items = document.createElement('ol')
    items.className = 'items'
    items.dataset.list = key
    const add = label('button', ADD_LABELS[key], 'add')
    add.type = 'button'
    add.addEventListener('click', () => {
      this.undoManager?.stopCapturing()
      const id = addItem(this.doc, key, key === 'goals' ? { status: 'not_started' } : {}, this.origin)
      requestAnimationFrame(() => {
        items.querySelector(`[data-item-id="${CSS.escape(id)}"] input, [data-item-id="${CSS.escape(id)}"] textarea`)?.focus()
      })
    })
    body.replaceChildren(items, add)

    const rendered = new Map() // Y.Map -> { element, unbinds }
    const reconcile = () => {
      const current = array.toArray().filter((item) => item instanceof Y.Map && itemId(item))
      const keep = new Set(current)
      for (const [item, entry] of rendered) {
        if (!keep.has(item)) {
          entry.unbinds.forEach((unbind) => unbind())
          entry.element.remove()
          rendered.delete(item)
        }
      }
      current.forEach((item, index) => {
        let entry = rendered.get(item)
        if (!entry) {
          entry = this.renderItem(key, item)
          rendered.set(item, entry)
        }
        // Move only what is out of place, so a focused control elsewhere keeps focus.
        if (items.children[index] !== entry.element) items.insertBefore(entry.element, items.children[index] || null)
      })
      this.applyReadOnly()
      this.onRendered()
    }
    array.observe(reconcile)
    reconcile()
  }

  renderItem (key, item) {
    const id = itemId(item)
    const element = document.createElement('li')
    element.className = 'item'
    element.dataset.itemId = id
    const fields = document.createElement('div')
    fields.className = 'item-fields'
    const unbinds = []
    for (const field of LIST_SECTIONS[key]) {
      const control = field === 'status'
        ? selectControl(GOAL_STATUSES, 'status_')
        : textControl(field, { wraps: field === 'title' })
      unbinds.push(ITEM_TEXT_FIELDS[key].includes(field)
        ? bindField(this.doc, item, field, control, this.origin)
        : bindValue(this.doc, item, field, control, this.origin))
      fields.append(fieldRow(field, `${key}/${id}/${field}`, control))
    }
    const actions = document.createElement('div')
    actions.className = 'item-actions'
    const button = (i18nKey, symbol, action) => {
      const b = document.createElement('button')
      b.type = 'button'
      b.className = `icon ${i18nKey}`
      b.dataset.i18nTitle = i18nKey
      b.title = t(i18nKey)
      b.setAttribute('aria-label', b.title)
      b.textContent = symbol
      b.addEventListener('click', action)
      return b
    }
    const step = (action) => () => {
      this.undoManager?.stopCapturing()
      action()
      this.undoManager?.stopCapturing()
    }
    actions.append(
      button('moveUp', '↑', step(() => moveItem(this.doc, key, item, -1, this.origin))),
      button('moveDown', '↓', step(() => moveItem(this.doc, key, item, 1, this.origin))),
      button('remove', '×', step(() => {
        const title = text(item.get('title'))
        if (removeItem(this.doc, key, item, this.origin) >= 0) this.onRemove?.(title)
      })),
    )
    element.append(fields, actions)
    return { element, unbinds }
  }

  setReadOnly (readOnly) {
    this.readOnly = readOnly
    this.applyReadOnly()
  }

  applyReadOnly () {
    this.container.classList.toggle('read-only', this.readOnly)
    for (const control of this.container.querySelectorAll('input, textarea, select, button')) {
      control.disabled = this.readOnly
    }
    this.notes?.setReadOnly(this.readOnly)
  }
}
