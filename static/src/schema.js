// The IEP document schema of docs/iep-schema.md: one root Y.Map `iep`.
import * as Y from 'yjs'

export const SCHEMA_VERSION = 1
export const STUDENT_FIELDS = ['name', 'dateOfBirth', 'grade', 'school', 'primaryLanguage', 'diagnosis', 'guardianName']
export const GOAL_STATUSES = ['not_started', 'in_progress', 'met', 'discontinued']

/** The list sections: their item fields (besides `id`) in display order. */
export const LIST_SECTIONS = {
  goals: ['title', 'area', 'baseline', 'target', 'status'],
  accommodations: ['title', 'details'],
  services: ['title', 'provider', 'frequency', 'minutesPerSession'],
}

export function root (doc) {
  return doc.getMap('iep')
}

/** A section of the expected type, or null (a wrong type is treated as absent). */
export function section (doc, key) {
  const value = root(doc).get(key)
  if (key === 'meta' || key === 'student') return value instanceof Y.Map ? value : null
  if (key === 'notes') return value instanceof Y.Text ? value : null
  return value instanceof Y.Array ? value : null
}

/** Create whatever sections are missing, in one transaction (first opener of an empty IEP). */
export function ensureSections (doc, { title, studentName = '', language }) {
  const iep = root(doc)
  doc.transact(() => {
    if (!section(doc, 'meta')) {
      const meta = new Y.Map()
      iep.set('meta', meta)
      meta.set('title', title)
      meta.set('language', language)
      meta.set('schemaVersion', SCHEMA_VERSION)
    }
    if (!section(doc, 'student')) {
      const student = new Y.Map()
      iep.set('student', student)
      if (studentName) student.set('name', studentName)
    }
    for (const key of Object.keys(LIST_SECTIONS)) {
      if (!section(doc, key)) iep.set(key, new Y.Array())
    }
    if (!section(doc, 'notes')) iep.set('notes', new Y.Text())
  })
}

export function missingSections (doc) {
  return ['meta', 'student', ...Object.keys(LIST_SECTIONS), 'notes'].filter((key) => !section(doc, key))
}

export function newId () {
  return crypto.randomUUID()
}

/** Items are created whole: id and title set in the transaction that inserts them. */
export function addItem (doc, key, fields) {
  const list = section(doc, key)
  if (!list) return null
  const item = new Y.Map()
  const id = newId()
  doc.transact(() => {
    list.push([item])
    item.set('id', id)
    for (const [field, value] of Object.entries(fields)) item.set(field, value)
  })
  return id
}

export function removeItem (doc, key, item) {
  const list = section(doc, key)
  const index = list ? list.toArray().indexOf(item) : -1
  if (index >= 0) list.delete(index, 1)
}

/** Reorder = delete + insert of a map with the same id and every key (unknown ones too). */
export function moveItem (doc, key, item, offset) {
  const list = section(doc, key)
  if (!list) return
  const index = list.toArray().indexOf(item)
  const target = index + offset
  if (index < 0 || target < 0 || target >= list.length) return
  doc.transact(() => {
    const copy = new Y.Map()
    const entries = Array.from(item.entries()).map(([field, value]) => [field, cloneValue(value)])
    list.delete(index, 1)
    list.insert(target, [copy])
    for (const [field, value] of entries) copy.set(field, value)
  })
}

function cloneValue (value) {
  return value instanceof Y.AbstractType ? value.clone() : value
}

export function itemId (item) {
  const id = item instanceof Y.Map ? item.get('id') : null
  return typeof id === 'string' ? id : null
}

export function text (value) {
  return typeof value === 'string' ? value : value == null ? '' : String(value)
}
