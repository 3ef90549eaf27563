// Restore: make the live document hold a version's content again, as ordinary edits.
//
// The version's state (a Yjs update from the server) is loaded into a scratch document and
// the live one is changed to match it in ONE local transaction with the caller's origin, so
// it syncs like any edit, is attributed to the person who restored, and that person's
// Y.UndoManager (tracking the same origin) can undo it. Nothing is replaced wholesale: text
// changes only where it differs, items are matched by `id`, so edits that others make at the
// same moment merge into the result. Works on any layout of shared types (the schema-1 `iep`
// root map, or root-level types): root types are inferred from the version's content.
//
// Pure: the caller passes its own `Y` (the one its documents were made with).

/** Root name -> 'map' | 'array' | 'text' for every root the update names. */
export function rootKinds (Y, doc) {
  const kinds = new Map()
  for (const [name, type] of doc.share) {
    if (type instanceof Y.Map) kinds.set(name, 'map')
    else if (type instanceof Y.Array) kinds.set(name, 'array')
    else if (type instanceof Y.Text) kinds.set(name, 'text')
    else if (type._map.size > 0) kinds.set(name, 'map')
    else if (type._start !== null) {
      let item = type._start
      while (item !== null && item.deleted) item = item.right
      const isText = item === null || item.content instanceof Y.ContentString ||
        item.content instanceof Y.ContentFormat || item.content instanceof Y.ContentEmbed
      kinds.set(name, isText ? 'text' : 'array')
    }
  }
  return kinds
}

export function rootOf (doc, name, kind) {
  if (kind === 'map') return doc.getMap(name)
  if (kind === 'array') return doc.getArray(name)
  return doc.getText(name)
}

/** The version's document, read-only, and its roots by name. */
export function versionDoc (Y, state) {
  const source = new Y.Doc()
  Y.applyUpdate(source, state)
  const kinds = rootKinds(Y, source)
  const roots = new Map([...kinds].map(([name, kind]) => [name, rootOf(source, name, kind)]))
  return { source, kinds, roots }
}

/**
 * Restore `state` into `doc`. `path` limits it to one section (`goals`, `student`) or one
 * item (`goals/<id>`); empty restores everything. Returns true if anything changed.
 */
export function restoreState (Y, doc, state, { origin = null, path = '' } = {}) {
  const { source, kinds, roots } = versionDoc(Y, state)
  let changed = false
  const before = Y.encodeStateVector(doc)
  doc.transact(() => {
    if (!path) {
      for (const [name, kind] of kinds) syncType(Y, roots.get(name), rootOf(doc, name, kind))
      // Roots the version did not have yet are emptied (they are kept, as the app owns them).
      for (const [name, type] of doc.share) {
        if (!kinds.has(name)) clearType(Y, type)
      }
      return
    }
    const [sectionKey, itemId] = path.split('/')
    if (!usesLegacyRoot(Y, roots)) {
      // Schema 2: the section's own root, and its fields' roots (`student/name`).
      for (const [rootName, kind] of kinds) {
        if (rootName === sectionKey && itemId !== undefined) {
          if (kind === 'array') restoreItem(Y, roots.get(rootName), rootOf(doc, rootName, kind), itemId)
        } else if (itemId === undefined && (rootName === sectionKey || rootName.startsWith(`${sectionKey}/`))) {
          syncType(Y, roots.get(rootName), rootOf(doc, rootName, kind))
        }
      }
      return
    }
    const sourceSection = sectionIn(roots, sectionKey)
    const targetParent = sectionParent(Y, doc, kinds, sectionKey)
    if (!targetParent) return
    if (itemId === undefined) {
      restoreEntry(Y, targetParent, sectionKey, sourceSection)
      return
    }
    const targetSection = targetParent.get ? targetParent.get(sectionKey) : targetParent
    if (sourceSection instanceof Y.Array && targetSection instanceof Y.Array) {
      restoreItem(Y, sourceSection, targetSection, itemId)
    }
  }, origin)
  changed = !equalVectors(before, Y.encodeStateVector(doc))
  source.destroy()
  return changed
}

function clearType (Y, type) {
  if (type instanceof Y.Map) for (const key of Array.from(type.keys())) type.delete(key)
  else if ((type instanceof Y.Array || type instanceof Y.Text) && type.length > 0) type.delete(0, type.length)
}

function equalVectors (a, b) {
  return a.length === b.length && a.every((byte, i) => byte === b[i])
}

/** Schema 1 kept every section in the root map `iep`; a migrated version says schema 2. */
function usesLegacyRoot (Y, roots) {
  const meta = roots.get('meta')
  const version = meta instanceof Y.Map ? meta.get('schemaVersion') : undefined
  const legacy = roots.get('iep')
  return !(typeof version === 'number' && version >= 2) && legacy instanceof Y.Map && legacy.size > 0
}

// A section is a key of the schema-1 `iep` map, or a root of its own.
function sectionIn (roots, key) {
  const legacy = roots.get('iep')
  if (legacy && legacy.has && legacy.has(key)) return legacy.get(key)
  return roots.get(key) ?? null
}

function sectionParent (Y, doc, kinds, key) {
  if (kinds.get('iep') === 'map') return doc.getMap('iep')
  const kind = kinds.get(key)
  return kind ? { root: rootOf(doc, key, kind) } : null
}

function restoreEntry (Y, parent, key, sourceValue) {
  if (parent.root) {
    if (sourceValue) syncType(Y, sourceValue, parent.root)
    return
  }
  const current = parent.get(key)
  if (sourceValue == null) parent.delete(key)
  else if (sourceValue instanceof Y.AbstractType && sameKind(Y, sourceValue, current)) syncType(Y, sourceValue, current)
  else parent.set(key, copy(Y, sourceValue))
}

function restoreItem (Y, from, to, id) {
  const sourceIndex = from.toArray().findIndex((item) => itemId(Y, item) === id)
  const targetIndex = to.toArray().findIndex((item) => itemId(Y, item) === id)
  if (sourceIndex < 0) {
    if (targetIndex >= 0) to.delete(targetIndex, 1)
  } else if (targetIndex >= 0) {
    syncType(Y, from.get(sourceIndex), to.get(targetIndex))
  } else {
    to.insert(Math.min(sourceIndex, to.length), [copy(Y, from.get(sourceIndex))])
  }
}

function sameKind (Y, a, b) {
  return (a instanceof Y.Map && b instanceof Y.Map) || (a instanceof Y.Array && b instanceof Y.Array) ||
    (a instanceof Y.Text && b instanceof Y.Text)
}

function copy (Y, value) {
  return value instanceof Y.AbstractType ? value.clone() : value
}

function itemId (Y, item) {
  const id = item instanceof Y.Map ? item.get('id') : null
  return typeof id === 'string' && id ? id : null
}

function equalValues (a, b) {
  return JSON.stringify(a) === JSON.stringify(b)
}

/** Change `to` (live) until it holds what `from` (the version) holds. */
export function syncType (Y, from, to) {
  if (from instanceof Y.Text && to instanceof Y.Text) return syncText(to, from.toString())
  if (from instanceof Y.Map && to instanceof Y.Map) return syncMap(Y, from, to)
  if (from instanceof Y.Array && to instanceof Y.Array) return syncArray(Y, from, to)
}

function syncText (to, wanted) {
  const current = to.toString()
  if (current === wanted) return
  let start = 0
  while (start < current.length && start < wanted.length && current[start] === wanted[start]) start++
  let end = 0
  while (end < current.length - start && end < wanted.length - start &&
    current[current.length - 1 - end] === wanted[wanted.length - 1 - end]) end++
  const removed = current.length - start - end
  if (removed > 0) to.delete(start, removed)
  const inserted = wanted.slice(start, wanted.length - end)
  if (inserted) to.insert(start, inserted)
}

function syncMap (Y, from, to) {
  for (const [key, value] of from.entries()) {
    const current = to.get(key)
    if (value instanceof Y.AbstractType) {
      if (sameKind(Y, value, current)) syncType(Y, value, current)
      else to.set(key, value.clone())
    } else if (!to.has(key) || !equalValues(value, current)) {
      to.set(key, value)
    }
  }
  for (const key of Array.from(to.keys())) {
    if (!from.has(key)) to.delete(key)
  }
}

function syncArray (Y, from, to) {
  const wanted = from.toArray()
  const keyed = wanted.length > 0 && wanted.every((item) => itemId(Y, item) !== null) &&
    to.toArray().every((item) => itemId(Y, item) !== null)
  if (!keyed) {
    if (!equalValues(from.toJSON(), to.toJSON())) {
      to.delete(0, to.length)
      to.insert(0, wanted.map((value) => copy(Y, value)))
    }
    return
  }
  const wantedIds = new Set(wanted.map((item) => itemId(Y, item)))
  for (let i = to.length - 1; i >= 0; i--) {
    if (!wantedIds.has(itemId(Y, to.get(i)))) to.delete(i, 1)
  }
  wanted.forEach((item, index) => {
    const id = itemId(Y, item)
    const at = to.toArray().findIndex((candidate) => itemId(Y, candidate) === id)
    if (at === index) {
      syncType(Y, item, to.get(index))
    } else {
      // Reordering is delete + insert of the same id (docs/iep-schema.md).
      if (at >= 0) to.delete(at, 1)
      to.insert(index, [item.clone()])
    }
  })
}
