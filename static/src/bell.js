// The notification bell: unread count live, the newest notifications, read in one tab = read
// in all of them (the server keeps the marker and tells every tab).
import { addStrings, label, language, onLanguageChange, relativeTime, t } from './i18n.js'
import { apiFetch } from './session.js'
import { LiveEvents } from './live.js'

addStrings({
  en: {
    notifications: 'Notifications',
    notificationsUnread: 'Notifications, {n} unread',
    noNotifications: 'Nothing new.',
  },
  ar: {
    notifications: 'الإشعارات',
    notificationsUnread: 'الإشعارات، {n} غير مقروءة',
    noNotifications: 'لا جديد.',
  },
})

function linkFor (item) {
  if (!item.document) return null
  const path = '/doc/' + item.document.split('/').map(encodeURIComponent).join('/')
  return item.kind === 'thread_message' ? `${path}#messages` : path
}

export function installBell (session, where, { onCall = () => {}, onLive = () => {} } = {}) {
  const call = (path, options) => apiFetch(session, path, options)
  const wrap = document.createElement('span')
  wrap.className = 'bell'
  const button = document.createElement('button')
  button.type = 'button'
  button.className = 'secondary bell-button'
  // Drawn, not an emoji: not every machine has a font with one.
  button.innerHTML = '<svg viewBox="0 0 24 24" width="18" height="18" aria-hidden="true" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round"><path d="M18 8a6 6 0 0 0-12 0c0 7-3 9-3 9h18s-3-2-3-9"/><path d="M13.7 21a2 2 0 0 1-3.4 0"/></svg>'
  const count = document.createElement('span')
  count.className = 'unread-badge'
  count.hidden = true
  const panel = document.createElement('div')
  panel.className = 'card bell-panel'
  panel.hidden = true
  panel.setAttribute('role', 'region')
  wrap.append(button, count, panel)
  where.prepend(wrap)

  let state = { unread: 0, read_through: 0, recent: [] }

  function render () {
    count.hidden = state.unread === 0
    count.textContent = state.unread.toLocaleString(language())
    const name = state.unread ? t('notificationsUnread', { n: state.unread }) : t('notifications')
    button.setAttribute('aria-label', name)
    button.title = name
    panel.setAttribute('aria-label', t('notifications'))
    const list = document.createElement('ul')
    list.className = 'bell-list'
    for (const item of state.recent) {
      const row = document.createElement('li')
      if (item.id > state.read_through) row.className = 'unread'
      const link = linkFor(item)
      const title = document.createElement(link ? 'a' : 'strong')
      if (link) title.href = link
      title.className = 'bell-title'
      title.textContent = item.title
      title.dir = 'auto'
      const body = document.createElement('p')
      body.className = 'bell-body'
      body.dir = 'auto'
      body.textContent = item.body.length > 140 ? item.body.slice(0, 140) + '…' : item.body
      const when = document.createElement('time')
      when.className = 'hint'
      when.textContent = relativeTime(item.created_at)
      row.append(title, body, when)
      list.append(row)
    }
    panel.replaceChildren(state.recent.length ? list : label('p', 'noNotifications', 'hint'))
  }

  async function load () {
    const response = await call('/api/notifications/bell')
    if (!response.ok) return
    state = await response.json()
    render()
  }

  async function markRead () {
    const newest = state.recent[0]?.id ?? 0
    if (newest <= state.read_through) return
    state = { ...state, read_through: newest, unread: 0 }
    render()
    await call('/api/notifications/read', { method: 'POST', body: JSON.stringify({ through: newest }) })
  }

  button.addEventListener('click', () => {
    panel.hidden = !panel.hidden
    if (!panel.hidden) markRead()
  })
  document.addEventListener('click', (event) => {
    if (!wrap.contains(event.target)) panel.hidden = true
  })

  const live = new LiveEvents(session, {
    onEvent (event) {
      if (event.kind === 'notification') {
        state = { ...state, recent: [event.data, ...state.recent].slice(0, 20), unread: state.unread + 1 }
        render()
        if (!panel.hidden) markRead()
      } else if (event.kind === 'notifications.read') {
        load()
      } else if (event.kind.startsWith('call.')) {
        onCall(event) // rings come on the person's own topic, like the bell's news
      }
    },
    onReset () { load() },
    onSubscribed () { onLive() },
  })
  onLanguageChange(render)
  load().then(() => {
    live.subscribe([`user:${session.userId}`])
    live.start()
  })
}
