// The History panel: editing sessions (who, when, what per field), named and automatic
// versions with open / compare / restore / export / send, and "last edited by" on hover.
import * as Y from 'yjs'
import { addStrings, label, onLanguageChange, relativeTime, t } from './i18n.js'
import { RECORD_STRINGS } from './records-strings.js'
import { restoreState } from './restore.js'
import { openCompare } from './compare.js'
import { bdi, el, fieldLabel, renderContent, whenText, withName } from './records-view.js'

addStrings(RECORD_STRINGS)

function api (session, path, options = {}) {
  return fetch(withName(path, session), {
    ...options,
    headers: { accept: 'application/json', 'content-type': 'application/json', ...session.authHeaders(), ...(options.headers || {}) },
  })
}

function docApi (name) {
  return `/api/documents/${name.split('/').map(encodeURIComponent).join('/')}`
}

/**
 * Adds the History button and panel to a document page. `editor` may bring the editor's own
 * `{ undoManager, origin }`; otherwise restores get an UndoManager of their own.
 */
export function installHistory ({ doc, name, session, access, toolbar, page, form, editor = {} }) {
  const base = docApi(name)
  const canWrite = access.canWrite !== false
  // Owners send versions to the parents; in development mode the API lets anyone.
  const isOwner = access.role === 'owner' || String(session.userKey).startsWith('dev:')
  const origin = editor.origin || { restoreOf: name }
  let undoManager = editor.undoManager || null

  const button = label('button', 'history', 'secondary history-toggle')
  button.type = 'button'
  toolbar.append(button)
  const panel = el('aside', 'card history-panel')
  panel.hidden = true
  page.append(panel)
  const status = el('p', 'hint history-status')
  status.setAttribute('role', 'status')

  button.addEventListener('click', async () => {
    panel.hidden = !panel.hidden
    if (!panel.hidden) await render()
  })
  onLanguageChange(() => { if (!panel.hidden) render() })

  function trackedRoots () {
    return Array.from(doc.share.values()).filter((type) => type instanceof Y.AbstractType && !(type.constructor === Y.AbstractType))
  }

  async function restore (version, path = '') {
    const response = await api(session, `${base}/versions/${version.id}/restore`, { method: 'POST', body: JSON.stringify({ path }) })
    if (!response.ok) return
    const body = await response.json()
    const state = Uint8Array.from(atob(body.restore_state ?? body.state), (c) => c.charCodeAt(0))
    if (!undoManager) undoManager = new Y.UndoManager(trackedRoots(), { trackedOrigins: new Set([origin]) })
    // Its own undo step: never merged with what the person typed just before or after.
    undoManager.stopCapturing()
    restoreState(Y, doc, state, { origin, path })
    undoManager.stopCapturing()
    status.dataset.i18n = 'restored'
    status.textContent = t('restored')
    const undo = label('button', 'undoRestore', 'secondary undo-restore')
    undo.type = 'button'
    undo.addEventListener('click', () => { undoManager.undo(); undo.remove() })
    status.append(' ', undo)
  }

  async function render () {
    const [history, versions] = await Promise.all([
      api(session, `${base}/history`).then((r) => (r.ok ? r.json() : { sessions: [] })),
      api(session, `${base}/versions`).then((r) => (r.ok ? r.json() : { versions: [] })),
    ])
    const close = label('button', 'close', 'secondary')
    close.type = 'button'
    close.addEventListener('click', () => { panel.hidden = true })
    const header = el('div', 'panel-header')
    header.append(label('h2', 'history'), close)
    panel.replaceChildren(header, status)

    if (canWrite) panel.append(nameForm())
    panel.append(label('h3', 'versions'))
    const list = el('ul', 'versions-list')
    for (const version of versions.versions) list.append(versionRow(version))
    panel.append(list)

    panel.append(label('h3', 'history'))
    const sessions = el('ol', 'sessions')
    if (history.sessions.length === 0) sessions.append(label('li', 'noHistory', 'hint'))
    for (const s of history.sessions) sessions.append(sessionRow(s))
    panel.append(sessions)
    if (history.complete === false) panel.append(label('p', 'historyIncomplete', 'hint'))
  }

  function nameForm () {
    const formEl = el('form', 'name-version')
    const input = el('input')
    input.required = true
    input.dir = 'auto'
    input.name = 'version-name'
    input.dataset.i18nPlaceholder = 'versionName'
    input.placeholder = t('versionName')
    const note = el('input')
    note.dir = 'auto'
    note.name = 'version-note'
    note.dataset.i18nPlaceholder = 'versionNote'
    note.placeholder = t('versionNote')
    const save = label('button', 'nameVersion')
    save.type = 'submit'
    formEl.append(input, note, save)
    formEl.addEventListener('submit', async (event) => {
      event.preventDefault()
      const response = await api(session, `${base}/versions`, { method: 'POST', body: JSON.stringify({ name: input.value.trim(), note: note.value.trim() }) })
      if (response.ok) await render()
    })
    return formEl
  }

  function versionRow (version) {
    const li = el('li', 'version')
    li.dataset.versionId = version.id
    const title = el('strong')
    if (version.kind === 'auto') title.append(label('span', 'autoVersion'))
    else title.append(bdi(version.name))
    const meta = el('span', 'hint')
    meta.append(' ', label('span', 'by'), ' ', bdi(version.author.name), ' · ', whenText(version.created_at))
    const actions = el('span', 'version-actions')
    const action = (key, handler) => {
      const b = label('button', key, 'secondary small')
      b.type = 'button'
      b.dataset.action = key
      b.addEventListener('click', handler)
      actions.append(b)
    }
    action('openVersion', () => showVersion(version))
    if (canWrite) action('compareNow', () => openCompare({ session, base, page, from: version.id, to: 'current' }))
    if (canWrite) action('restore', () => restore(version))
    action('exportPdf', () => { location.href = `${base}/versions/${version.id}/export.pdf` })
    action('exportJson', () => { location.href = `${base}/versions/${version.id}/export.json` })
    if (isOwner && version.kind === 'named') {
      action('sendToParents', async () => {
        const response = await api(session, `${base}/versions/${version.id}/acknowledgements`, { method: 'POST' })
        if (response.ok) {
          status.dataset.i18n = 'sentToParents'
          status.textContent = t('sentToParents')
        }
      })
    }
    li.append(title, meta, actions)
    if (version.note) li.append(el('p', 'hint', version.note))
    return li
  }

  async function showVersion (version) {
    const response = await api(session, `${base}/versions/${version.id}`)
    if (!response.ok) return
    const body = await response.json()
    const view = el('div', 'card version-view')
    const close = label('button', 'close', 'secondary')
    close.type = 'button'
    close.addEventListener('click', () => view.remove())
    const heading = el('h2')
    heading.append(bdi(version.kind === 'auto' ? t('autoVersion') : version.name))
    view.append(heading, close, renderContent(body.content))
    page.querySelector('.version-view')?.remove()
    page.append(view)
    view.scrollIntoView()
  }

  function sessionRow (s) {
    const li = el('li', 'session')
    const who = s.server ? label('strong', 'server') : el('strong')
    if (!s.server) who.append(bdi(s.name || s.user_id))
    const when = el('span', 'hint', ` · ${whenText(s.ended_at)} · ${s.edits} `)
    when.append(label('span', 'edits'))
    li.append(who, when)
    const changes = el('ul', 'changes')
    for (const c of s.changes) {
      const row = el('li', `change change-${c.kind}`)
      row.append(el('span', 'field-name', fieldLabel(c.path, c.item?.title)), ' ', label('span', c.kind, 'change-kind'))
      if (c.kind !== 'removed' && c.after !== null) {
        const detail = el('span', 'change-text')
        detail.dir = 'auto'
        if (c.before) {
          const del = el('del', '', c.before)
          del.dir = 'auto'
          detail.append(del, ' → ')
        }
        const ins = el('ins', '', c.after)
        ins.dir = 'auto'
        detail.append(ins)
        row.append(' ', detail)
      }
      changes.append(row)
    }
    li.append(changes)
    return li
  }

  // "Last edited by X, when" on hover of each field.
  async function annotateFields () {
    const response = await api(session, `${base}/history/fields`)
    if (!response.ok) return
    const { fields } = await response.json()
    for (const row of form.querySelectorAll('[data-field]')) {
      const path = row.dataset.field
      const edit = fields[path]
      if (!edit) continue
      row.title = `${t('lastEditedBy')} ${edit.name || edit.user_id || t('server')}, ${relativeTime(edit.at)}`
      row.dataset.lastEditedBy = edit.name || edit.user_id || ''
    }
  }
  form.addEventListener('mouseover', (event) => {
    const row = event.target.closest?.('[data-field]')
    if (row && !row.dataset.annotated) {
      row.dataset.annotated = '1'
      annotateFields()
    }
  })
  return { render, annotateFields, restore }
}
