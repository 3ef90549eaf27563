// Entry point: `/` lists the IEPs the user may open, `/doc/{name}` edits one.
import * as Y from 'yjs'
import { IndexeddbPersistence } from 'y-indexeddb'
import { applyLanguage, installLanguageSwitch, label, language, plural, t } from './i18n.js'
import { loadConfig, signIn } from './session.js'
import { Connection, ConnectionState } from './connection.js'
import { Presence } from './presence.js'
import { IepForm } from './form.js'
import { ParentView, changesSinceLastVisit } from './parent-view.js'
import { fieldText, roots } from './schema.js'
import { SaveState, SaveTracker } from './saved.js'
import { mountProgress } from './progress.js'
import { installHistory } from './history.js'
import { installShare } from './share.js'
import { installMessages } from './messages.js'
import { installBell } from './bell.js'
import { installCallButton, installCalls } from './calls.js'
import { settingsPage } from './settings.js'
import { acknowledgementPage } from './acknowledge.js'
import { documentsList } from './documents-list.js'

const DOC_PREFIX = '/doc/'
const ACK_PREFIX = '/ack/'
const REFUSED_KEY = 'iep-write-refused'
const LOCAL_PREFIX = 'iep:'

async function main () {
  // The offline shell: the next visit opens even when the server does not answer.
  navigator.serviceWorker?.register('/offline.js').catch((error) => console.warn('offline shell', error))
  installLanguageSwitch()
  const app = document.getElementById('app')
  const config = await loadConfig()
  const session = await signIn(config, app)
  showSignedIn(session)
  const calls = installCalls(session)
  installBell(session, document.getElementById('signed-in-as'), { onCall: calls.heard, onLive: calls.catchUp })
  if (location.pathname.startsWith(ACK_PREFIX)) {
    await acknowledgementPage(app, decodeURIComponent(location.pathname.slice(ACK_PREFIX.length)), session)
  } else if (location.pathname === '/settings') {
    await settingsPage(app, session)
  } else if (location.pathname.startsWith(DOC_PREFIX)) {
    const name = decodeURIComponent(location.pathname.slice(DOC_PREFIX.length))
    await documentPage(app, name, session, config, calls)
  } else {
    await listPage(app, config, session)
  }
  applyLanguage()
}

function showSignedIn (session) {
  const who = document.getElementById('signed-in-as')
  const name = document.createElement('bdi')
  name.textContent = session.name
  const out = label('button', 'signOut', 'secondary')
  out.type = 'button'
  out.addEventListener('click', async () => {
    await forgetLocalCopies()
    await session.signOut()
  })
  const settings = label('a', 'settings', 'settings-link')
  settings.href = '/settings'
  who.replaceChildren(name, settings, out)
}

function deleteDatabase (databaseName) {
  return new Promise((resolve) => {
    const request = indexedDB.deleteDatabase(databaseName)
    request.onsuccess = request.onerror = request.onblocked = resolve
  })
}

/** IEPs hold children's records: signing out leaves no copy on a shared computer. */
async function forgetLocalCopies () {
  if (!indexedDB.databases) return
  const databases = await indexedDB.databases()
  await Promise.all(databases
    .filter(({ name }) => name && name.startsWith(LOCAL_PREFIX))
    .map(({ name }) => deleteDatabase(name)))
}

function docHref (name) {
  return DOC_PREFIX + name.split('/').map(encodeURIComponent).join('/')
}

// -- the list -----------------------------------------------------------------------------

/** The server names the new IEP: never from the student's name, never an existing record. */
async function createIep (session, studentName) {
  const response = await fetch('/api/documents', {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json', ...session.authHeaders() },
    body: JSON.stringify({ student_name: studentName, title: '', language: language() }),
  })
  if (!response.ok) throw new Error(t('createFailed'))
  return await response.json()
}

async function listPage (app, config, session) {
  const { card: listCard, documents, mayCreate } = await documentsList(session, docHref)

  // Opens existing IEPs only: creating is the server's job (New IEP), never a typo's.
  const openCard = nameForm('openByName', 'documentName', 'open', async (value) => {
    // Archived IEPs are not in the list but still open by name.
    const listed = documents === null || documents.some((entry) => entry.name === value)
    if (listed || (await fetchAccess(value, session)).refusal !== 'missing') {
      location.href = docHref(value)
      return
    }
    openCard.querySelector('.refused-banner')?.remove()
    const problem = label('p', 'notFoundHint', 'banner refused-banner')
    problem.setAttribute('role', 'alert')
    openCard.append(problem)
  })
  const children = [listCard, openCard]
  if (mayCreate) {
    const createCard = nameForm('newIep', 'studentName', 'create', async (value) => {
      try {
        const created = await createIep(session, value)
        location.href = docHref(created.name)
      } catch (error) {
        const problem = document.createElement('p')
        problem.className = 'banner refused-banner'
        problem.setAttribute('role', 'alert')
        problem.textContent = error.message
        createCard.append(problem)
      }
    })
    children.push(createCard)
  }
  app.replaceChildren(...children)
}

function nameForm (headingKey, fieldKey, buttonKey, onSubmit) {
  const form = document.createElement('form')
  form.className = 'card inline-form'
  form.append(label('h2', headingKey))
  const input = document.createElement('input')
  input.dir = 'auto'
  input.required = true
  input.id = `${headingKey}-input`
  const caption = label('label', fieldKey)
  caption.htmlFor = input.id
  const submit = label('button', buttonKey)
  submit.type = 'submit'
  form.append(caption, input, submit)
  form.addEventListener('submit', (event) => {
    event.preventDefault()
    if (input.value.trim()) onSubmit(input.value.trim())
  })
  return form
}

// -- one IEP ------------------------------------------------------------------------------

/** The caller's role, or why the page cannot open: 'forbidden', 'missing', 'signIn'. */
async function fetchAccess (name, session) {
  const ask = () => fetch(`/api/access/${name.split('/').map(encodeURIComponent).join('/')}`, {
    headers: { accept: 'application/json', ...session.authHeaders() },
  })
  try {
    let response = await ask()
    if (response.status === 401) {
      await session.refresh()
      response = await ask()
    }
    if (response.ok) return await response.json()
    if (response.status === 401) return { refusal: 'signIn' }
    if (response.status === 403) return { refusal: 'forbidden' }
    if (response.status === 400 || response.status === 404) return { refusal: 'missing' }
  } catch {
    // Offline: the device copy opens, and the server answers for itself over the socket.
  }
  return { role: null, canWrite: true }
}

function setStatus (state) {
  const status = document.getElementById('connection-status')
  status.hidden = false
  status.dataset.state = state
  status.dataset.i18n = state
  status.textContent = t(state)
}

/** A refusal said plainly, with a way back; never an endless "Reconnecting…". */
function refusalPage (app, refusal) {
  const card = document.createElement('section')
  card.className = 'card refusal'
  card.setAttribute('role', 'alert')
  const [title, hint] = refusal === 'forbidden' ? ['noAccess', 'noAccessHint'] : ['notFound', 'notFoundHint']
  const back = label('a', 'backToList')
  back.href = '/'
  card.append(label('h1', title), label('p', hint, 'hint'), back)
  app.replaceChildren(card)
  setStatus(ConnectionState.REFUSED)
}

// This person's changes in the form (what their undo undoes and the save indicator counts).
const LOCAL_ORIGIN = { local: true }
const REMOVED_TOAST_MS = 6000

async function documentPage (app, name, session, config, calls) {
  setStatus(ConnectionState.CONNECTING)
  const access = await fetchAccess(name, session)
  if (access.refusal === 'signIn') {
    await session.signOut() // the sign-in form, then this same page again
    return
  }
  if (access.refusal) {
    refusalPage(app, access.refusal)
    return
  }
  let readOnly = !access.canWrite

  const doc = new Y.Doc()
  // Offline edits survive a closed tab; kept per user so one person's drafts never go out
  // under another's credentials.
  const local = new IndexeddbPersistence(`${LOCAL_PREFIX}${session.userKey}:${name}`, doc)

  const page = document.createElement('div')
  page.className = 'doc-page'
  const banner = document.createElement('div')
  banner.className = 'banners'
  const presenceBar = document.createElement('div')
  presenceBar.className = 'presence-bar'
  presenceBar.id = 'presence-bar'
  const heading = document.createElement('h1')
  heading.className = 'doc-title'
  const headingText = document.createElement('bdi')
  heading.append(headingText)
  const docName = document.createElement('p')
  docName.className = 'doc-name'
  const docNameText = document.createElement('bdi')
  docNameText.dir = 'ltr'
  docNameText.textContent = name
  docName.append(docNameText)
  const form = document.createElement('div')
  form.className = 'iep-form'
  const toolbar = document.createElement('div')
  toolbar.className = 'doc-toolbar'
  const saveState = document.createElement('span')
  saveState.className = 'save-state'
  saveState.id = 'save-state'
  saveState.setAttribute('role', 'status')
  page.append(banner, presenceBar, heading, docName, toolbar, form)
  app.replaceChildren(page)

  const studentName = fieldText(doc, 'student', 'name')
  const title = fieldText(doc, 'meta', 'title')
  const showTitle = () => {
    const filled = (value) => (value.trim() !== '' ? value : null)
    const student = filled(studentName.toString())
    const shown = filled(title.toString()) || student
    headingText.textContent = shown || name
    docName.hidden = !shown
    document.title = student || headingText.textContent
  }
  studentName.observe(showTitle)
  title.observe(showTitle)

  const readOnlyBanner = label('p', 'readOnly', 'banner read-only-banner')
  readOnlyBanner.setAttribute('role', 'note')
  const refusedBanner = label('p', 'writeRefused', 'banner refused-banner')
  refusedBanner.setAttribute('role', 'alert')

  let iepForm = null
  const enterReadOnly = () => {
    readOnly = true
    if (!readOnlyBanner.isConnected) banner.prepend(readOnlyBanner)
    iepForm?.setReadOnly(true)
    toolbar.classList.add('read-only')
  }

  const connection = new Connection(doc, name, session, {
    onState: setStatus,
    onPermissionDenied: async () => {
      // The server kept nothing: drop the refused change from this device too and start
      // again from what the server holds.
      enterReadOnly()
      if (refusedBanner.isConnected) return
      banner.append(refusedBanner)
      sessionStorage.setItem(REFUSED_KEY, name)
      await local.clearData()
      // y-indexeddb starts the deletion without waiting for it: a reload before it ends
      // would load the refused change again, send it again, and be refused again.
      await deleteDatabase(local.name)
      location.reload()
    },
    onRefused: async () => {
      // The socket was refused before it opened: ask the API why, and say so.
      const again = await fetchAccess(name, session)
      if (again.refusal === 'signIn') await session.signOut()
      else if (again.refusal) {
        connection.destroy()
        refusalPage(app, again.refusal)
      }
    },
  })

  // Undo means "my last change": only this person's edits, never someone else's.
  const undoManager = new Y.UndoManager(roots(doc), { trackedOrigins: new Set([LOCAL_ORIGIN]) })
  const undoButton = label('button', 'undo', 'secondary undo')
  const redoButton = label('button', 'redo', 'secondary redo')
  undoButton.type = redoButton.type = 'button'
  undoButton.addEventListener('click', () => undoManager.undo())
  redoButton.addEventListener('click', () => undoManager.redo())
  const showUndo = () => {
    undoButton.disabled = readOnly || undoManager.undoStack.length === 0
    redoButton.disabled = readOnly || undoManager.redoStack.length === 0
  }
  for (const event of ['stack-item-added', 'stack-item-popped', 'stack-cleared']) undoManager.on(event, showUndo)
  showUndo()
  installUndoKeys(form, undoManager, () => readOnly)

  const presence = new Presence(connection.awareness, session, presenceBar, form)
  if (access.role === 'viewer') {
    // A parent reads a summary, not a greyed-out form.
    new ParentView(doc, form, await changesSinceLastVisit(name, session)) // eslint-disable-line no-new
  } else {
    iepForm = new IepForm(doc, connection.awareness, form, {
      readOnly,
      origin: LOCAL_ORIGIN,
      undoManager,
      onRendered: () => presence.render(),
      onRemove: (removedTitle) => showRemoved(undoManager, removedTitle),
    })
    toolbar.append(saveState, undoButton, redoButton)
  }
  if (readOnly) enterReadOnly()
  mountProgress(page, name, session)
  if (sessionStorage.getItem(REFUSED_KEY) === name) {
    sessionStorage.removeItem(REFUSED_KEY)
    banner.append(refusedBanner)
  }

  const tracker = new SaveTracker(doc, connection.provider, `${session.userKey}:${name}`, {
    isLocal: (origin) => origin !== connection.provider && origin !== local,
    onChange: ({ state, unsaved }) => {
      saveState.dataset.state = state
      saveState.textContent = state === SaveState.OFFLINE
        ? (unsaved > 0 ? plural('offlineKept', unsaved) : t('offline'))
        : t(state === SaveState.SAVED ? 'allSaved' : 'saving')
    },
  })
  await local.whenSynced
  showTitle()
  connection.start()

  const history = installHistory({ doc, name, session, access, toolbar, page, form, editor: { undoManager, origin: LOCAL_ORIGIN } })
  // Owners share (in development mode anyone may: the API lets them).
  if (access.role === 'owner' || config.mode === 'development') installShare({ name, session, config, toolbar, page })
  installMessages({ name, session, toolbar, page, awareness: connection.awareness })
  installCallButton({ calls, name, toolbar, threadHeading: page.querySelector('.messages-panel h2'), awareness: connection.awareness })

  // A handle for diagnosing a page from the browser console.
  window.iepEditor = { doc, provider: connection.provider, awareness: connection.awareness, name, local, history, undoManager, tracker }
}

/** Ctrl+Z / Ctrl+Shift+Z (and Ctrl+Y) in the form's fields undo this person's changes; the
 * browser's own per-field undo would fight the shared document. Notes has its own keymap. */
function installUndoKeys (form, undoManager, isReadOnly) {
  const inField = (target) => target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement
  // Typing in another field is another step to undo, however quickly it follows.
  form.addEventListener('focusin', () => undoManager.stopCapturing())
  form.addEventListener('keydown', (event) => {
    if (!inField(event.target) || !(event.ctrlKey || event.metaKey) || isReadOnly()) return
    const key = event.key.toLowerCase()
    if (key === 'z' && !event.shiftKey) {
      event.preventDefault()
      undoManager.undo()
    } else if ((key === 'z' && event.shiftKey) || key === 'y') {
      event.preventDefault()
      undoManager.redo()
    }
  })
  form.addEventListener('beforeinput', (event) => {
    if (!inField(event.target)) return
    if (event.inputType === 'historyUndo' || event.inputType === 'historyRedo') {
      event.preventDefault()
      if (event.inputType === 'historyUndo') undoManager.undo()
      else undoManager.redo()
    }
  })
}

/** "Removed — Undo" for a few seconds after an item is removed. */
function showRemoved (undoManager, removedTitle) {
  document.querySelector('.toast')?.remove()
  const removal = undoManager.undoStack[undoManager.undoStack.length - 1]
  const toast = document.createElement('div')
  toast.className = 'toast'
  toast.setAttribute('role', 'status')
  const message = document.createElement('bdi')
  message.textContent = removedTitle.trim() ? t('removedItem', { title: removedTitle.trim() }) : t('removedUntitled')
  const undo = label('button', 'undo', 'secondary')
  undo.type = 'button'
  undo.addEventListener('click', () => {
    // Back to before that removal (whatever this person did since is undone first).
    while (undoManager.undoStack.includes(removal)) undoManager.undo()
    toast.remove()
  })
  toast.append(message, undo)
  document.body.append(toast)
  setTimeout(() => toast.remove(), REMOVED_TOAST_MS)
}

main().catch((error) => {
  console.error(error)
  const app = document.getElementById('app')
  const message = document.createElement('p')
  message.className = 'banner refused-banner'
  message.textContent = String(error.message || error)
  app.replaceChildren(message)
})
