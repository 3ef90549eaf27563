// The IEP form: DOM bound to the Y document, section by section, without re-rendering
// what the user is typing in (a remote change only touches the controls it changed).
import * as Y from 'yjs'
import { label, t, onLanguageChange } from './i18n.js'
import {
  GOAL_STATUSES, LIST_SECTIONS, STUDENT_FIELDS, addItem, itemId, moveItem, removeItem, root,
  section, text,
} from './schema.js'
import { NotesEditor } from './notes.js'

const ADD_LABELS = { goals: 'addGoal', accommodations: 'addAccommodation', services: 'addService' }
const MULTILINE = new Set(['baseline', 'target', 'details'])

let controlCounter = 0

/** Write a remote value into a control, keeping the caret if the user is in it. */
function showValue (control, value) {
  if (control.value === value) return
  if (document.activeElement === control && 'selectionStart' in control && control.type !== 'date') {
    const { selectionStart, selectionEnd } = control
    control.value = value
    try {
      control.setSelectionRange(Math.min(selectionStart, value.length), Math.min(selectionEnd, value.length))
    } catch {
      // some input types have no selection
    }
  } else {
    control.value = value
  }
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

function textControl (field) {
  const control = document.createElement(MULTILINE.has(field) ? 'textarea' : 'input')
  if (control.tagName === 'INPUT') control.type = field === 'dateOfBirth' ? 'date' : 'text'
  if (field === 'minutesPerSession') control.inputMode = 'numeric'
  control.dir = 'auto'
  if (control.tagName === 'TEXTAREA') control.rows = 2
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

/** Two-way binding of one control to one key of a Y.Map. Returns an unbind function. */
function bind (doc, map, key, control) {
  showValue(control, text(map.get(key)))
  const push = () => doc.transact(() => map.set(key, control.value))
  control.addEventListener(control.tagName === 'SELECT' ? 'change' : 'input', push)
  const observer = (event) => {
    if (event.keysChanged.has(key)) showValue(control, text(map.get(key)))
  }
  map.observe(observer)
  return () => map.unobserve(observer)
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
  constructor (doc, awareness, container, { readOnly, onRendered }) {
    this.doc = doc
    this.awareness = awareness
    this.readOnly = readOnly
    this.onRendered = onRendered
    this.cleanups = new Map() // section key -> [unbind]
    this.bodies = new Map()
    this.notes = null
    this.container = container

    const order = [
      ['meta', 'meta'], ['student', 'student'], ['goals', 'goals'],
      ['accommodations', 'accommodations'], ['services', 'services'], ['notes', 'notes'],
    ]
    for (const [key, heading] of order) {
      const { shell, body } = sectionShell(key, heading)
      this.bodies.set(key, body)
      container.append(shell)
      this.renderSection(key)
    }
    // A section replaced as a whole (two first openers racing) is rendered again.
    root(doc).observe((event) => {
      for (const key of event.keysChanged) if (this.bodies.has(key)) this.renderSection(key)
      this.onRendered()
    })
    onLanguageChange(() => this.applyReadOnly())
  }

  renderSection (key) {
    for (const unbind of this.cleanups.get(key) || []) unbind()
    const cleanups = []
    this.cleanups.set(key, cleanups)
    const body = this.bodies.get(key)
    const value = section(this.doc, key)
    if (key === 'notes') this.notes?.destroy()
    if (!value) {
      body.replaceChildren(label('p', 'loadingDocument', 'hint'))
      return
    }
    if (key === 'meta') this.renderMeta(body, value, cleanups)
    else if (key === 'student') this.renderStudent(body, value, cleanups)
    else if (key === 'notes') this.renderNotes(body, value)
    else this.renderList(key, body, value, cleanups)
    this.applyReadOnly()
  }

  renderMeta (body, meta, cleanups) {
    const title = textControl('title')
    const language = selectControl(['ar', 'en'], 'lang_')
    cleanups.push(bind(this.doc, meta, 'title', title), bind(this.doc, meta, 'language', language))
    body.replaceChildren(
      fieldRow('title', 'meta/title', title),
      fieldRow('documentLanguage', 'meta/language', language),
    )
  }

  renderStudent (body, student, cleanups) {
    body.replaceChildren(...STUDENT_FIELDS.map((field) => {
      const control = textControl(field)
      cleanups.push(bind(this.doc, student, field, control))
      return fieldRow(field, `student/${field}`, control)
    }))
  }

  renderNotes (body, ytext) {
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
    this.notes = new NotesEditor(mount, ytext, this.awareness, this.readOnly, t('notes'))
  }

  renderList (key, body, list, cleanups) {
    const items = document.createElement('ol')
    items.className = 'items'
    items.dataset.list = key
    const add = label('button', ADD_LABELS[key], 'add')
    add.type = 'button'
    add.addEventListener('click', () => {
      const fields = { title: '' }
      if (key === 'goals') fields.status = 'not_started'
      const id = addItem(this.doc, key, fields)
      requestAnimationFrame(() => {
        items.querySelector(`[data-item-id="${CSS.escape(id)}"] input, [data-item-id="${CSS.escape(id)}"] textarea`)?.focus()
      })
    })
    body.replaceChildren(items, add)

    const rendered = new Map() // Y.Map -> { element, unbinds }
    const reconcile = () => {
      const current = list.toArray().filter((item) => item instanceof Y.Map && itemId(item))
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
    list.observe(reconcile)
    reconcile()
    cleanups.push(() => {
      list.unobserve(reconcile)
      for (const entry of rendered.values()) entry.unbinds.forEach((unbind) => unbind())
    })
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
      const control = field === 'status' ? selectControl(GOAL_STATUSES, 'status_') : textControl(field)
      unbinds.push(bind(this.doc, item, field, control))
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
    actions.append(
      button('moveUp', '↑', () => moveItem(this.doc, key, item, -1)),
      button('moveDown', '↓', () => moveItem(this.doc, key, item, 1)),
      button('remove', '×', () => removeItem(this.doc, key, item)),
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
