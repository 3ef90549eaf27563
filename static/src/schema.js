// The IEP document schema, version 2 (docs/iep-schema.md): every section and top-level field is
// a root-level shared type, so no two first openers can race to create one; free text is a
// Y.Text per field, created with its item, so two people typing into one field both keep
// every character.
import * as Y from 'yjs'

export const SCHEMA_VERSION = 2
export const STUDENT_TEXT_FIELDS = ['name', 'grade', 'school', 'primaryLanguage', 'diagnosis', 'guardianName']
/** Student fields in display order; dateOfBirth is a single value in the `student` map. */
export const STUDENT_FIELDS = ['name', 'dateOfBirth', 'grade', 'school', 'primaryLanguage', 'diagnosis', 'guardianName']
export const GOAL_STATUSES = ['not_started', 'in_progress', 'met', 'discontinued']

/** The list sections: their item fields (besides `id`) in display order. */
export const LIST_SECTIONS = {
  goals: ['title', 'area', 'baseline', 'target', 'status'],
  accommodations: ['title', 'details'],
  services: ['title', 'provider', 'frequency', 'minutesPerSession'],
}
/** Item fields that are free text (a Y.Text); the others are single values. */
export const ITEM_TEXT_FIELDS = {
  goals: ['title', 'area', 'baseline', 'target'],
  accommodations: ['title', 'details'],
  services: ['title', 'provider', 'frequency'],
}

export const meta = (doc) => doc.getMap('meta')
export const student = (doc) => doc.getMap('student')
export const notes = (doc) => doc.getText('notes')
export const list = (doc, key) => doc.getArray(key)
/** A top-level free-text field: `meta/title`, `student/name`. */
export const fieldText = (doc, sectionKey, field) => doc.getText(`${sectionKey}/${field}`)

/** Every root the editor reads and writes (what an undo manager tracks). */
export function roots (doc) {
  return [
    meta(doc), student(doc), notes(doc), fieldText(doc, 'meta', 'title'),
    ...STUDENT_TEXT_FIELDS.map((field) => fieldText(doc, 'student', field)),
    ...Object.keys(LIST_SECTIONS).map((key) => list(doc, key)),
  ]
}

/** The version a document declares; schema 1 kept everything under the root map `iep`. */
export function declaredVersion (doc) {
  const version = meta(doc).get('schemaVersion')
  if (typeof version === 'number') return version
  return doc.getMap('iep').size > 0 ? 1 : SCHEMA_VERSION
}

export function newId () {
  return crypto.randomUUID()
}

/** Items are created whole: id and every free-text field in the transaction that inserts them. */
export function addItem (doc, key, values = {}, origin = null) {
  const item = new Y.Map()
  const id = newId()
  doc.transact(() => {
    if (meta(doc).get('schemaVersion') !== SCHEMA_VERSION) meta(doc).set('schemaVersion', SCHEMA_VERSION)
    list(doc, key).push([item])
    item.set('id', id)
    for (const field of ITEM_TEXT_FIELDS[key]) item.set(field, new Y.Text(values[field] || ''))
    for (const [field, value] of Object.entries(values)) {
      if (!ITEM_TEXT_FIELDS[key].includes(field)) item.set(field, value)
    }
  }, origin)
  return id
}

export function removeItem (doc, key, item, origin = null) {
  const index = list(doc, key).toArray().indexOf(item)
  if (index >= 0) doc.transact(() => list(doc, key).delete(index, 1), origin)
  return index
}

/** Reorder = delete + insert of a map with the same id and every key (unknown ones too). */
export function moveItem (doc, key, item, offset, origin = null) {
  const items = list(doc, key)
  const index = items.toArray().indexOf(item)
  const target = index + offset
  if (index < 0 || target < 0 || target >= items.length) return
  doc.transact(() => {
    const copy = new Y.Map()
    const entries = Array.from(item.entries()).map(([field, value]) => [field, cloneValue(value)])
    items.delete(index, 1)
    items.insert(target, [copy])
    for (const [field, value] of entries) copy.set(field, value)
  }, origin)
}

function cloneValue (value) {
  return value instanceof Y.AbstractType ? value.clone() : value
}

export function itemId (item) {
  const id = item instanceof Y.Map ? item.get('id') : null
  return typeof id === 'string' ? id : null
}

export function text (value) {
  if (value instanceof Y.Text) return value.toString()
  return typeof value === 'string' ? value : value == null ? '' : String(value)
}
