// Messages: the student's thread between the family and the team, live on the IEP page.
// The team's messages reach parents on their own channels (WhatsApp, email, in-app); a
// parent's WhatsApp reply arrives here like any other message.
import { addStrings, label, language, onLanguageChange, relativeTime, t } from './i18n.js'
import { apiFetch } from './session.js'
import { LiveEvents } from './live.js'

addStrings({
  en: {
    messages: 'Messages',
    messagesTitle: 'Messages with the family',
    noMessages: 'No messages yet.',
    writeMessage: 'Write a message',
    send: 'Send',
    sendFailed: 'Not sent; try again.',
    messagesTooMany: 'Not sent: many messages in the last minutes. Wait a little, then send again.',
    viaWhatsapp: 'on WhatsApp',
    family: 'family',
    readBy: 'Read by {names}',
    delivery_sent: 'sent',
    delivery_delivered: 'delivered',
    delivery_read: 'read',
    delivery_failed: 'not delivered',
    delivery_pending: 'sending',
    sentBy_whatsapp: 'WhatsApp',
    sentBy_sms: 'SMS',
    sentBy_email: 'email',
    sentBy_in_app: 'in the app',
    openFile: 'Open the file',
    attachFile: 'Attach a photo, PDF or voice note',
    typingNow: '{names} writing…',
  },
  ar: {
    messages: 'الرسائل',
    messagesTitle: 'الرسائل مع الأسرة',
    noMessages: 'لا توجد رسائل بعد.',
    writeMessage: 'اكتب رسالة',
    send: 'إرسال',
    sendFailed: 'لم تُرسل؛ حاول مرة أخرى.',
    messagesTooMany: 'لم تُرسل: رسائل كثيرة في الدقائق الأخيرة. انتظر قليلاً ثم أرسل مرة أخرى.',
    viaWhatsapp: 'عبر واتساب',
    family: 'الأسرة',
    readBy: 'قرأها {names}',
    delivery_sent: 'أُرسلت',
    delivery_delivered: 'وصلت',
    delivery_read: 'قُرئت',
    delivery_failed: 'لم تصل',
    delivery_pending: 'قيد الإرسال',
    sentBy_whatsapp: 'واتساب',
    sentBy_sms: 'رسالة SMS',
    sentBy_email: 'البريد',
    sentBy_in_app: 'التطبيق',
    openFile: 'افتح الملف',
    attachFile: 'أرفق صورة أو ملف PDF أو رسالة صوتية',
    typingNow: '{names} يكتب…',
  },
})

const SEND_KEYS = (event) => event.key === 'Enter' && (event.ctrlKey || event.metaKey)

const TYPING_MS = 6000 // "is typing" lasts this long after the last keystroke

export function installMessages ({ name, session, toolbar, page, awareness = null }) {
  const base = `/api/students/${name.split('/').map(encodeURIComponent).join('/')}/thread`
  const call = (path, options) => apiFetch(session, path, options)
  const me = session.userId
  const messages = new Map() // id -> message
  let reads = {}
  const readers = {} // user id -> name

  const button = label('button', 'messages', 'secondary messages-toggle')
  button.type = 'button'
  const badge = document.createElement('span')
  badge.className = 'unread-badge'
  badge.hidden = true
  const buttonWrap = document.createElement('span')
  buttonWrap.className = 'messages-button'
  buttonWrap.append(button, badge)
  toolbar.append(buttonWrap)

  const panel = document.createElement('aside')
  panel.className = 'card messages-panel'
  panel.id = 'messages'
  panel.hidden = true
  const heading = label('h2', 'messagesTitle')
  const list = document.createElement('ol')
  list.className = 'thread'
  const empty = label('p', 'noMessages', 'hint')
  const form = document.createElement('form')
  form.className = 'composer'
  const input = document.createElement('textarea')
  input.dir = 'auto'
  input.rows = 2
  input.dataset.i18nPlaceholder = 'writeMessage'
  input.placeholder = t('writeMessage')
  input.setAttribute('aria-label', t('writeMessage'))
  const send = label('button', 'send')
  send.type = 'submit'
  const file = document.createElement('input')
  file.type = 'file'
  file.accept = 'image/jpeg,image/png,image/webp,application/pdf,audio/*'
  file.setAttribute('aria-label', t('attachFile'))
  file.dataset.i18nTitle = 'attachFile'
  const problem = document.createElement('p')
  problem.className = 'hint composer-problem'
  problem.setAttribute('role', 'alert')
  const typing = document.createElement('p')
  typing.className = 'hint typing'
  typing.setAttribute('aria-live', 'polite')
  form.append(input, file, send, problem)
  panel.append(heading, empty, list, typing, form)
  page.append(panel)

  button.addEventListener('click', () => {
    panel.hidden = !panel.hidden
    if (!panel.hidden) {
      panel.scrollIntoView({ block: 'nearest' })
      input.focus()
      markRead()
    }
  })
  input.addEventListener('keydown', (event) => {
    if (SEND_KEYS(event)) form.requestSubmit()
  })
  // Who is writing a message: the IEP's presence (awareness) carries it, live and gone with
  // the tab; nothing of it is stored.
  let lastTyped = 0
  input.addEventListener('input', () => {
    const now = Date.now()
    if (awareness && now - lastTyped > 2000) {
      lastTyped = now
      awareness.setLocalStateField('typingMessage', now)
    }
  })
  const stopTyping = () => {
    lastTyped = 0
    awareness?.setLocalStateField('typingMessage', null)
  }
  input.addEventListener('blur', stopTyping)
  function showTyping () {
    if (!awareness) return
    const now = Date.now()
    const names = new Set()
    for (const [clientId, state] of awareness.getStates()) {
      if (clientId === awareness.clientID || !state?.user || !state.typingMessage) continue
      if (state.user.key === session.userKey) continue
      if (now - state.typingMessage < TYPING_MS) names.add(state.user.name)
    }
    typing.textContent = names.size ? t('typingNow', { names: [...names].join(language() === 'ar' ? '، ' : ', ') }) : ''
  }
  awareness?.on('change', showTyping)
  setInterval(showTyping, 2000)
  form.addEventListener('submit', async (event) => {
    event.preventDefault()
    const body = input.value.trim()
    const chosen = file.files?.[0]
    if (!body && !chosen) return
    send.disabled = true
    problem.textContent = ''
    try {
      const message = { body }
      if (chosen) {
        const uploaded = await fetch(`/api/uploads/thread-media?student=${encodeURIComponent(name)}`, {
          method: 'POST',
          body: chosen,
          headers: { 'content-type': chosen.type || 'application/octet-stream', ...session.authHeaders() },
        })
        if (!uploaded.ok) throw new Error(t('sendFailed'))
        message.attachment = (await uploaded.json()).id
      }
      const response = await call(base, { method: 'POST', body: JSON.stringify(message) })
      if (!response.ok) throw new Error(t(response.status === 429 ? 'messagesTooMany' : 'sendFailed'))
      add(await response.json())
      // Clear what was sent, never what was typed or picked while it was on its way.
      if (input.value.trim() === body) input.value = ''
      if (chosen && file.files?.[0] === chosen) file.value = ''
      stopTyping()
    } catch (error) {
      problem.textContent = error.message || t('sendFailed')
    } finally {
      send.disabled = false
      input.focus()
    }
  })

  function add (message) {
    if (messages.has(message.id)) return
    messages.set(message.id, { deliveries: [], ...message })
    render()
    if (!panel.hidden) markRead()
  }

  function newest () {
    return Math.max(0, ...messages.keys())
  }

  async function markRead () {
    const through = newest()
    if (!through || (reads[me] ?? 0) >= through) return
    reads = { ...reads, [me]: through }
    render()
    await call(`${base}/read`, { method: 'POST', body: JSON.stringify({ through }) })
  }

  function unread () {
    const seen = reads[me] ?? 0
    return [...messages.values()].filter((m) => m.id > seen && m.author_id !== me).length
  }

  function render () {
    const ordered = [...messages.values()].sort((a, b) => a.id - b.id)
    empty.hidden = ordered.length > 0
    list.replaceChildren(...ordered.map(row))
    const count = unread()
    badge.hidden = count === 0
    badge.textContent = count.toLocaleString(language())
    list.lastElementChild?.scrollIntoView?.({ block: 'nearest' })
  }

  function row (message) {
    const item = document.createElement('li')
    item.dataset.id = message.id
    item.className = message.author_id === me ? 'mine' : (message.from_family ? 'family' : 'team')
    const meta = document.createElement('div')
    meta.className = 'meta'
    const author = document.createElement('bdi')
    author.className = 'author'
    author.textContent = message.author_name
    const when = document.createElement('time')
    when.dateTime = new Date(message.at * 1000).toISOString()
    when.textContent = relativeTime(message.at)
    meta.append(author, ' · ', when)
    if (message.from_family) meta.append(' · ', t('family'))
    if (message.channel === 'whatsapp') meta.append(' · ', t('viaWhatsapp'))
    const body = document.createElement('p')
    body.className = 'body'
    body.dir = 'auto'
    body.textContent = message.body
    item.append(meta)
    if (message.attachment) item.append(attachment(message.attachment))
    if (message.body) item.append(body)
    const deliveries = (message.deliveries || []).map((d) => {
      const state = d.delivery_status || (d.state === 'failed' ? 'failed' : d.state === 'sent' ? 'sent' : 'pending')
      return `${t(`sentBy_${d.channel}`)}: ${t(`delivery_${state}`)}`
    })
    const readers = Object.entries(reads)
      .filter(([user, through]) => user !== message.author_id && through >= message.id)
      .map(([user]) => nameOf(user))
    if (deliveries.length || readers.length) {
      const status = document.createElement('p')
      status.className = 'hint delivery'
      status.textContent = [...deliveries, readers.length ? t('readBy', { names: readers.join(language() === 'ar' ? '، ' : ', ') }) : '']
        .filter(Boolean).join(' · ')
      item.append(status)
    }
    return item
  }

  /** A photo, voice note or file: fetched once with the person's credentials, shown in every
   * render of its message. */
  const files = new Map() // media id -> Promise of an object URL (null: not readable)
  function attachment ({ id, mime }) {
    const holder = document.createElement('div')
    holder.className = 'attachment'
    if (!files.has(id)) {
      files.set(id, call(`${base}/media/${id}`)
        .then(async (response) => (response.ok ? URL.createObjectURL(await response.blob()) : null))
        .catch(() => null))
    }
    files.get(id).then((url) => {
      if (!url) return
      let shown
      if (mime.startsWith('image/')) {
        shown = Object.assign(document.createElement('img'), { src: url, alt: '' })
      } else if (mime.startsWith('audio/')) {
        shown = Object.assign(document.createElement('audio'), { src: url, controls: true })
      } else {
        shown = label('a', 'openFile')
        shown.href = url
        shown.download = `attachment-${id}`
      }
      holder.append(shown)
    })
    return holder
  }

  function nameOf (userId) {
    return readers[userId] || userId.replace(/^dev:/, '')
  }

  async function load () {
    const response = await call(base)
    if (!response.ok) return
    const body = await response.json()
    reads = body.reads || {}
    Object.assign(readers, body.readers || {})
    for (const message of body.messages) messages.set(message.id, message)
    render()
  }

  const live = new LiveEvents(session, {
    onEvent (event) {
      if (event.kind === 'thread.message') add(event.data)
      else if (event.kind === 'thread.read') {
        readers[event.data.user_id] = event.data.name
        reads = { ...reads, [event.data.user_id]: Math.max(reads[event.data.user_id] ?? 0, event.data.through) }
        render()
      }
    },
    onReset () { load() },
  })
  onLanguageChange(() => {
    input.setAttribute('aria-label', t('writeMessage'))
    render()
  })
  load().then(() => {
    live.subscribe([`student:${name}`])
    live.start()
    if (location.hash === '#messages') button.click()
  })
  return { panel, reload: load }
}
