// `/sessions`: a therapist's week and each child's upcoming sessions, live.
//   /sessions                 my week (therapists), my children's sessions (parents)
//   /sessions?student=NAME    one student's upcoming sessions
//   /sessions?therapist=ID    another therapist's week (admins)
//   &week=YYYY-MM-DD          the week of that day instead of this one
import { addStrings, installLanguageSwitch, label, language, onLanguageChange, t } from './i18n.js'
import { loadConfig, signIn } from './session.js'
import { LiveEvents } from './live.js'

addStrings({
  en: {
    sessionsTitle: 'Sessions',
    week: 'Week',
    previousWeek: 'Previous week',
    nextWeek: 'Next week',
    upcoming: 'Upcoming sessions',
    noSessions: 'No sessions.',
    schedule: 'Schedule a session',
    studentField: 'Student',
    when: 'Date and time',
    duration: 'Minutes',
    kindField: 'Kind',
    room: 'Room',
    confirm: 'Confirm',
    cancelSession: 'Cancel',
    live_connected: 'Live',
    live_connecting: 'Connecting…',
    live_reconnecting: 'Reconnecting…',
    session_scheduled: 'Scheduled',
    session_confirmed: 'Confirmed',
    session_in_progress: 'In progress',
    session_completed: 'Completed',
    session_cancelled: 'Cancelled',
    session_no_show: 'No show',
    attention_parent_cannot_come: 'Parent cannot come',
    kind_speech: 'Speech',
    kind_occupational: 'Occupational',
    kind_behavioural: 'Behavioural',
    kind_physical: 'Physiotherapy',
    kind_psychological: 'Psychological',
    online: 'Online',
    with: 'with',
  },
  ar: {
    sessionsTitle: 'الجلسات',
    week: 'الأسبوع',
    previousWeek: 'الأسبوع السابق',
    nextWeek: 'الأسبوع التالي',
    upcoming: 'الجلسات القادمة',
    noSessions: 'لا جلسات.',
    schedule: 'جدولة جلسة',
    studentField: 'الطالب',
    when: 'التاريخ والوقت',
    duration: 'الدقائق',
    kindField: 'النوع',
    room: 'الغرفة',
    confirm: 'تأكيد',
    cancelSession: 'إلغاء',
    live_connected: 'مباشر',
    live_connecting: 'جارٍ الاتصال…',
    live_reconnecting: 'جارٍ إعادة الاتصال…',
    session_scheduled: 'مجدولة',
    session_confirmed: 'مؤكدة',
    session_in_progress: 'جارية',
    session_completed: 'منتهية',
    session_cancelled: 'ملغاة',
    session_no_show: 'لم يحضر',
    attention_parent_cannot_come: 'ولي الأمر لا يستطيع الحضور',
    kind_speech: 'النطق',
    kind_occupational: 'العلاج الوظيفي',
    kind_behavioural: 'العلاج السلوكي',
    kind_physical: 'العلاج الطبيعي',
    kind_psychological: 'الدعم النفسي',
    online: 'عبر الإنترنت',
    with: 'مع',
  },
})

const DAY_MS = 86400000

function userId (session) {
  return session.userKey.startsWith('sb:') ? session.userKey.slice(3) : session.userKey
}

function weekStart (date) {
  const start = new Date(date)
  start.setHours(0, 0, 0, 0)
  start.setDate(start.getDate() - ((start.getDay() + 6) % 7)) // Monday
  return start
}

async function api (session, path, options = {}) {
  const response = await fetch(path, {
    ...options,
    headers: { accept: 'application/json', 'content-type': 'application/json', ...session.authHeaders() },
  })
  const body = await response.json().catch(() => ({}))
  if (!response.ok) throw Object.assign(new Error(body.error || response.statusText), { body })
  return body
}

function text (tag, value, className) {
  const element = document.createElement(tag)
  element.textContent = value
  if (className) element.className = className
  return element
}

class SessionsPage {
  constructor (app, session, params) {
    this.app = app
    this.session = session
    this.me = userId(session)
    this.therapist = params.get('therapist') || this.me
    this.students = params.get('student') ? [params.get('student')] : []
    this.sessions = new Map() // id -> session JSON (the highest version seen)
    this.week = weekStart(params.get('week') ? new Date(`${params.get('week')}T00:00`) : new Date())
    this.documents = []
    this.kinds = []
  }

  async start () {
    this.documents = (await api(this.session, '/api/documents').catch(() => ({ documents: [] }))).documents
    if (!this.students.length) {
      this.students = this.documents.filter((d) => d.role === 'viewer').map((d) => d.name)
    }
    this.kinds = (await api(this.session, '/api/session-kinds').catch(() => ({ kinds: [] }))).kinds
    this.live = new LiveEvents(this.session, {
      onEvent: (event) => this.upsert(event.data.session),
      onReset: () => this.load(),
      onState: (state) => this.showState(state),
    })
    this.live.subscribe([`therapist:${this.therapist}`, ...this.students.map((s) => `student:${s}`)])
    this.live.start()
    await this.load()
    onLanguageChange(() => this.render())
  }

  async load () {
    const from = new Date(this.week.getTime() - DAY_MS).toISOString()
    const to = new Date(this.week.getTime() + 35 * DAY_MS).toISOString()
    const lists = [api(this.session, `/api/sessions?therapist=${encodeURIComponent(this.therapist)}&from=${from}&to=${to}`)]
    const now = new Date().toISOString()
    for (const student of this.students) {
      lists.push(api(this.session, `/api/students/${student}/sessions?from=${now}`))
    }
    for (const result of await Promise.allSettled(lists)) {
      if (result.status === 'fulfilled') for (const item of result.value.sessions) this.upsert(item, false)
    }
    this.render()
  }

  upsert (item, render = true) {
    const known = this.sessions.get(item.id)
    if (!known || known.version <= item.version) this.sessions.set(item.id, item)
    if (render) this.render()
  }

  showState (state) {
    const status = document.getElementById('connection-status')
    status.hidden = false
    status.dataset.state = state
    status.dataset.i18n = `live_${state}`
    status.textContent = t(`live_${state}`)
  }

  card (item) {
    const card = document.createElement('article')
    card.className = `session-card status-${item.status}`
    card.dataset.session = item.id
    card.dataset.status = item.status
    const time = new Intl.DateTimeFormat(language(), { hour: '2-digit', minute: '2-digit' })
    const day = new Intl.DateTimeFormat(language(), { weekday: 'short', day: 'numeric', month: 'short' })
    const start = new Date(item.starts_at)
    const when = text('time', `${day.format(start)} ${time.format(start)}`)
    when.dateTime = item.starts_at
    const student = text('bdi', item.student_name || item.student_id, 'session-student')
    const kind = label('span', `kind_${item.kind}`, 'session-kind')
    if (kind.textContent === `kind_${item.kind}`) kind.textContent = item.kind
    const status = label('span', `session_${item.status}`, 'chip')
    const place = item.place.room ? text('bdi', item.place.room) : label('span', 'online')
    const who = document.createElement('span')
    who.className = 'session-therapists'
    who.append(label('span', 'with'), ' ', text('bdi', item.therapist_names.join(', ')))
    card.append(when, student, kind, status, place, who)
    if (item.attention) card.append(label('span', `attention_${item.attention}`, 'chip attention'))
    const mayEdit = this.documents.some((d) => d.name === item.student_id && d.role !== 'viewer')
    if (mayEdit && ['scheduled', 'confirmed'].includes(item.status)) {
      const actions = document.createElement('div')
      actions.className = 'session-actions'
      for (const [key, status] of [['confirm', 'confirmed'], ['cancelSession', 'cancelled']]) {
        if (status === item.status) continue
        const button = label('button', key, status === 'cancelled' ? 'secondary' : '')
        button.type = 'button'
        button.addEventListener('click', () => this.change(item, { status }))
        actions.append(button)
      }
      card.append(actions)
    }
    return card
  }

  async change (item, body) {
    try {
      this.upsert(await api(this.session, `/api/sessions/${item.id}`, { method: 'PATCH', body: JSON.stringify({ ...body, version: item.version }) }))
    } catch {
      await this.load()
    }
  }

  weekView () {
    const card = document.createElement('section')
    card.className = 'card week'
    const header = document.createElement('div')
    header.className = 'week-header'
    const previous = label('button', 'previousWeek', 'secondary')
    const next = label('button', 'nextWeek', 'secondary')
    previous.addEventListener('click', () => { this.week = new Date(this.week.getTime() - 7 * DAY_MS); this.load() })
    next.addEventListener('click', () => { this.week = new Date(this.week.getTime() + 7 * DAY_MS); this.load() })
    const range = new Intl.DateTimeFormat(language(), { day: 'numeric', month: 'long' })
    header.append(label('h2', 'week'), text('span', range.format(this.week), 'week-range'), previous, next)
    const grid = document.createElement('div')
    grid.className = 'week-grid'
    grid.id = 'week-grid'
    const dayName = new Intl.DateTimeFormat(language(), { weekday: 'long', day: 'numeric' })
    const mine = [...this.sessions.values()].filter((s) => s.therapists.includes(this.therapist))
    for (let i = 0; i < 7; i++) {
      const day = new Date(this.week.getTime() + i * DAY_MS)
      const end = new Date(day.getTime() + DAY_MS)
      const column = document.createElement('div')
      column.className = 'week-day'
      column.append(text('h3', dayName.format(day)))
      mine.filter((s) => Date.parse(s.starts_at) >= day && Date.parse(s.starts_at) < end)
        .sort((a, b) => a.starts_at.localeCompare(b.starts_at))
        .forEach((s) => column.append(this.card(s)))
      grid.append(column)
    }
    card.append(header, grid)
    return card
  }

  upcomingView () {
    const card = document.createElement('section')
    card.className = 'card upcoming'
    card.id = 'upcoming'
    card.append(label('h2', 'upcoming'))
    const now = Date.now()
    const items = [...this.sessions.values()]
      .filter((s) => this.students.includes(s.student_id) && Date.parse(s.ends_at) >= now)
      .sort((a, b) => a.starts_at.localeCompare(b.starts_at))
    if (!items.length) card.append(label('p', 'noSessions', 'hint'))
    for (const item of items) card.append(this.card(item))
    return card
  }

  scheduleForm () {
    const editable = this.documents.filter((d) => d.role !== 'viewer')
    if (!editable.length || !this.kinds.length) return null
    const form = document.createElement('form')
    form.className = 'card schedule-form'
    form.id = 'schedule-form'
    const field = (key, control) => {
      const row = document.createElement('label')
      row.append(label('span', key), control)
      form.append(row)
      return control
    }
    const select = (options) => {
      const element = document.createElement('select')
      for (const [value, caption] of options) element.append(Object.assign(document.createElement('option'), { value, textContent: caption }))
      return element
    }
    form.append(label('h2', 'schedule'))
    const student = field('studentField', select(editable.map((d) => [d.name, d.name])))
    const when = field('when', Object.assign(document.createElement('input'), { type: 'datetime-local', required: true, name: 'when' }))
    const duration = field('duration', Object.assign(document.createElement('input'), { type: 'number', value: 45, min: 5, max: 600, name: 'duration' }))
    const kind = field('kindField', select(this.kinds.map((k) => [k, t(`kind_${k}`) === `kind_${k}` ? k : t(`kind_${k}`)])))
    const room = field('room', Object.assign(document.createElement('input'), { required: true, dir: 'auto', name: 'room' }))
    const problems = text('p', '', 'hint problems')
    problems.setAttribute('role', 'alert')
    const submit = label('button', 'schedule')
    submit.type = 'submit'
    form.append(submit, problems)
    form.addEventListener('submit', async (event) => {
      event.preventDefault()
      try {
        this.upsert(await api(this.session, `/api/students/${student.value}/sessions`, {
          method: 'POST',
          body: JSON.stringify({
            therapists: [this.therapist],
            starts_at: new Date(when.value).toISOString(),
            duration_minutes: Number(duration.value),
            kind: kind.value,
            place: { room: room.value },
            goals: [],
          }),
        }))
        problems.textContent = ''
      } catch (error) {
        problems.textContent = Object.values(error.body?.problems || {}).join(' · ') || error.message
      }
    })
    return form
  }

  render () {
    // The form keeps what is being typed: only the lists are redrawn.
    this.form = this.form || this.scheduleForm()
    const parts = [label('h1', 'sessionsTitle')]
    if (this.therapist !== this.me || this.documents.some((d) => d.role !== 'viewer') || !this.students.length) {
      parts.push(this.weekView())
    }
    if (this.students.length) parts.push(this.upcomingView())
    if (this.form) parts.push(this.form)
    this.app.replaceChildren(...parts)
  }
}

async function main () {
  installLanguageSwitch()
  const app = document.getElementById('app')
  const session = await signIn(await loadConfig(), app)
  const who = document.getElementById('signed-in-as')
  who.replaceChildren(text('bdi', session.name))
  const page = new SessionsPage(app, session, new URLSearchParams(location.search))
  window.sessionsPage = page
  await page.start()
}

main().catch((error) => {
  console.error(error)
  document.getElementById('app').replaceChildren(text('p', String(error.message || error), 'banner refused-banner'))
})
