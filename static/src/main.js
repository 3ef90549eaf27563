// Entry point: `/` lists the IEPs the user may open, `/doc/{name}` edits one.
import * as Y from 'yjs'
import { IndexeddbPersistence } from 'y-indexeddb'
import { applyLanguage, installLanguageSwitch, label, language, t } from './i18n.js'
import { loadConfig, signIn } from './session.js'
import { Connection, ConnectionState } from './connection.js'
import { Presence } from './presence.js'
import { IepForm } from './form.js'
import { ensureSections, missingSections, section } from './schema.js'
import { mountProgress } from './progress.js'
import { installHistory } from './history.js'
import { acknowledgementPage } from './acknowledge.js'

const DOC_PREFIX = '/doc/'
const ACK_PREFIX = '/ack/'
const REFUSED_KEY = 'iep-write-refused'
const LOCAL_PREFIX = 'iep:'

async function main () {
  installLanguageSwitch()
  const app = document.getElementById('app')
  const config = await loadConfig()
  const session = await signIn(config, app)
  showSignedIn(session)
  if (location.pathname.startsWith(ACK_PREFIX)) {
    await acknowledgementPage(app, decodeURIComponent(location.pathname.slice(ACK_PREFIX.length)), session)
  } else if (location.pathname.startsWith(DOC_PREFIX)) {
    const name = decodeURIComponent(location.pathname.slice(DOC_PREFIX.length))
    await documentPage(app, name, session)
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
  who.replaceChildren(name, out)
}

/** IEPs hold children's records: signing out leaves no copy on a shared computer. */
async function forgetLocalCopies () {
  if (!indexedDB.databases) return
  const databases = await indexedDB.databases()
  await Promise.all(databases
    .filter(({ name }) => name && name.startsWith(LOCAL_PREFIX))
    .map(({ name }) => new Promise((resolve) => {
      const request = indexedDB.deleteDatabase(name)
      request.onsuccess = request.onerror = request.onblocked = resolve
    })))
}

function docHref (name) {
  return DOC_PREFIX + name.split('/').map(encodeURIComponent).join('/')
}

// -- the list -----------------------------------------------------------------------------

async function fetchDocuments (session) {
  try {
    const response = await fetch('/api/documents', { headers: { accept: 'application/json', ...session.authHeaders() } })
    if (!response.ok) return { documents: null, mayCreate: false }
    const body = await response.json()
    return { documents: Array.isArray(body.documents) ? body.documents : null, mayCreate: body.may_create === true }
  } catch {
    return { documents: null, mayCreate: false }
  }
}

/** The server names the new IEP: never from the student's name, never an existing record. */
async function createIep (session, studentName) {
  const response = await fetch('/api/documents', {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json', ...session.authHeaders() },
    body: JSON.stringify({ student_name: studentName, title: '' }),
  })
  if (!response.ok) throw new Error(t('createFailed'))
  return await response.json()
}

async function listPage (app, config, session) {
  const { documents, mayCreate } = await fetchDocuments(session)
  const listCard = document.createElement('section')
  listCard.className = 'card'
  listCard.append(label('h1', 'documents'))
  if (documents === null) {
    listCard.append(label('p', 'listUnavailable', 'hint'))
  } else if (documents.length === 0) {
    listCard.append(label('p', 'noDocuments', 'hint'))
  } else {
    const list = document.createElement('ul')
    list.className = 'documents'
    for (const entry of documents) {
      const item = document.createElement('li')
      const link = document.createElement('a')
      link.href = docHref(entry.name)
      const name = document.createElement('bdi')
      name.textContent = entry.name
      link.append(name)
      const role = label('span', `role_${entry.role}`, `role role-${entry.role}`)
      item.append(link, ' ', role)
      if (entry.updated_at) {
        const when = document.createElement('time')
        when.dateTime = entry.updated_at
        when.textContent = new Date(entry.updated_at).toLocaleString(language())
        item.append(' ', when)
      }
      list.append(item)
    }
    listCard.append(list)
  }

  const openCard = nameForm('openByName', 'documentName', 'open', (value) => {
    location.href = docHref(value)
  })
  const children = [listCard, openCard]
  if (mayCreate) {
    const createCard = nameForm('newIep', 'studentName', 'create', async (value) => {
      try {
        const created = await createIep(session, value)
        location.href = `${docHref(created.name)}?student=${encodeURIComponent(created.student_name)}`
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

async function fetchAccess (name, session) {
  try {
    const response = await fetch(`/api/access/${name}`, { headers: { accept: 'application/json', ...session.authHeaders() } })
    if (response.ok) return await response.json()
  } catch {
    // The server answers for itself over the socket.
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

async function documentPage (app, name, session) {
  setStatus(ConnectionState.CONNECTING)
  const access = await fetchAccess(name, session)
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
  page.append(banner, presenceBar, heading, docName, toolbar, form)
  app.replaceChildren(page)

  const showTitle = () => {
    const filled = (value) => (typeof value === 'string' && value.trim() !== '' ? value : null)
    const student = filled(section(doc, 'student')?.get('name'))
    const heading = filled(section(doc, 'meta')?.get('title')) || student
    headingText.textContent = heading || name
    docName.hidden = !heading
    document.title = student || headingText.textContent
  }

  const readOnlyBanner = label('p', 'readOnly', 'banner read-only-banner')
  readOnlyBanner.setAttribute('role', 'note')
  const refusedBanner = label('p', 'writeRefused', 'banner refused-banner')
  refusedBanner.setAttribute('role', 'alert')

  let iepForm = null
  let presence = null
  const enterReadOnly = () => {
    readOnly = true
    if (!readOnlyBanner.isConnected) banner.prepend(readOnlyBanner)
    iepForm?.setReadOnly(true)
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
      location.reload()
    },
  })
  presence = new Presence(connection.awareness, session, presenceBar, form)
  iepForm = new IepForm(doc, connection.awareness, form, {
    readOnly,
    onRendered: () => {
      showTitle()
      presence.render()
    },
  })
  if (readOnly) enterReadOnly()
  mountProgress(page, name, session)
  if (sessionStorage.getItem(REFUSED_KEY) === name) {
    sessionStorage.removeItem(REFUSED_KEY)
    banner.append(refusedBanner)
  }

  const params = new URLSearchParams(location.search)
  const createMissing = () => {
    if (!readOnly && missingSections(doc).length > 0) {
      ensureSections(doc, {
        title: params.get('title') || '',
        studentName: params.get('student') || '',
        language: language(),
      })
    }
  }
  connection.provider.on('sync', (synced) => {
    if (synced) createMissing()
  })
  doc.getMap('iep').observeDeep(showTitle)
  await local.whenSynced
  showTitle()
  connection.start()

  const history = installHistory({ doc, name, session, access, toolbar, page, form })

  // A handle for diagnosing a page from the browser console.
  window.iepEditor = { doc, provider: connection.provider, awareness: connection.awareness, name, local, history }
}

main().catch((error) => {
  console.error(error)
  const app = document.getElementById('app')
  const message = document.createElement('p')
  message.className = 'banner refused-banner'
  message.textContent = String(error.message || error)
  app.replaceChildren(message)
})
