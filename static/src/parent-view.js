// A parent's view of the IEP: a readable, phone-first summary in their language (not a
// greyed-out form), live, with what changed since their last visit marked and who changed it.
import { addStrings, label, language, onLanguageChange, t } from './i18n.js'
import { ITEM_TEXT_FIELDS, STUDENT_FIELDS, fieldText, itemId, list, notes, student, text } from './schema.js'

addStrings({
  en: {
    changedSince: 'Changed since your last visit',
    nothingChanged: 'Nothing has changed since your last visit.',
    changedBy: 'changed by {name}',
    minutesValue: '{n} minutes',
    noItems: 'None yet',
  },
  ar: {
    changedSince: 'ما تغيّر منذ زيارتك الأخيرة',
    nothingChanged: 'لم يتغيّر شيء منذ زيارتك الأخيرة.',
    changedBy: 'غيّره {name}',
    minutesValue: '{n} دقيقة',
    noItems: 'لا يوجد بعد',
  },
})

const SEEN_PREFIX = 'iep-seen:'
const ITEM_DETAILS = {
  goals: ['area', 'baseline', 'target'],
  accommodations: ['details'],
  services: ['provider', 'frequency', 'minutesPerSession'],
}

/** Field path -> { name, at } of changes by people since this person's last visit. */
export async function changesSinceLastVisit (docName, session) {
  const key = `${SEEN_PREFIX}${session.userKey}:${docName}`
  const seen = Number(localStorage.getItem(key)) || null
  const changed = new Map()
  try {
    const path = docName.split('/').map(encodeURIComponent).join('/')
    const response = await fetch(`/api/documents/${path}/history/fields`, {
      headers: { accept: 'application/json', ...session.authHeaders() },
    })
    if (response.ok) {
      const { fields } = await response.json()
      let latest = seen ?? 0
      for (const [field, edit] of Object.entries(fields)) {
        const byPerson = edit.user_id && !String(edit.user_id).startsWith('server:')
        if (byPerson && seen !== null && edit.at > seen) changed.set(field, edit)
        latest = Math.max(latest, edit.at)
      }
      // Next time, "since your last visit" starts from what this visit showed.
      localStorage.setItem(key, String(latest || Date.now() / 1000))
    }
  } catch {
    // Offline: nothing is marked; the summary still reads from this device.
  }
  return changed
}

export class ParentView {
  constructor (doc, container, changed) {
    this.doc = doc
    this.container = container
    this.changed = changed
    this.pending = false
    container.classList.add('parent-view')
    doc.on('update', () => this.renderSoon())
    onLanguageChange(() => this.render())
    this.render()
  }

  renderSoon () {
    if (this.pending) return
    this.pending = true
    requestAnimationFrame(() => {
      this.pending = false
      this.render()
    })
  }

  render () {
    const parts = [this.summary(), this.studentCard()]
    for (const key of Object.keys(ITEM_TEXT_FIELDS)) parts.push(this.itemsCard(key))
    parts.push(this.notesCard())
    this.container.replaceChildren(...parts)
  }

  summary () {
    const card = section('changes', 'changedSince')
    if (this.changed.size === 0) {
      card.append(label('p', 'nothingChanged', 'hint'))
      return card
    }
    const names = [...new Set([...this.changed.values()].map((edit) => edit.name).filter(Boolean))]
    const line = document.createElement('p')
    line.textContent = names.map((name) => t('changedBy', { name })).join(' · ')
    card.append(line)
    return card
  }

  studentCard () {
    const card = section('student', 'student')
    const rows = document.createElement('dl')
    for (const field of STUDENT_FIELDS) {
      const value = field === 'dateOfBirth'
        ? formatDate(text(student(this.doc).get(field)))
        : fieldText(this.doc, 'student', field).toString()
      if (value.trim()) rows.append(...this.entry(field, value, `student/${field}`))
    }
    card.append(rows)
    return card
  }

  itemsCard (key) {
    const card = section(key, key)
    const items = list(this.doc, key).toArray().filter((item) => itemId(item))
    if (items.length === 0) card.append(label('p', 'noItems', 'hint'))
    const listed = document.createElement('ul')
    listed.className = 'summary-items'
    for (const item of items) {
      const id = itemId(item)
      const entry = document.createElement('li')
      entry.dataset.itemId = id
      const heading = document.createElement('h3')
      heading.append(this.value(text(item.get('title')), `${key}/${id}/title`))
      if (key === 'goals') {
        const status = text(item.get('status')) || 'not_started'
        const badge = label('span', `status_${status}`, `status-badge status-${status}`)
        heading.append(' ', badge)
      }
      const details = document.createElement('dl')
      for (const field of ITEM_DETAILS[key]) {
        let value = text(item.get(field))
        if (field === 'minutesPerSession' && value) value = t('minutesValue', { n: value })
        if (value.trim()) details.append(...this.entry(field, value, `${key}/${id}/${field}`))
      }
      entry.append(heading, details)
      listed.append(entry)
    }
    card.append(listed)
    return card
  }

  notesCard () {
    const card = section('notes', 'notes')
    const body = document.createElement('div')
    body.className = 'summary-notes'
    for (const paragraph of notes(this.doc).toString().split('\n')) {
      if (!paragraph.trim()) continue
      const p = document.createElement('p')
      p.dir = 'auto' // each paragraph in its own direction
      p.textContent = paragraph
      body.append(p)
    }
    if (this.changed.has('notes')) body.append(this.changedBy('notes'))
    card.append(body)
    return card
  }

  entry (field, value, path) {
    const term = label('dt', field)
    const description = document.createElement('dd')
    description.append(this.value(value, path))
    return [term, description]
  }

  value (value, path) {
    const shown = document.createElement(this.changed.has(path) ? 'mark' : 'bdi')
    shown.className = this.changed.has(path) ? 'changed' : ''
    shown.dir = 'auto'
    shown.textContent = value
    if (!this.changed.has(path)) return shown
    const wrap = document.createElement('span')
    wrap.append(shown, ' ', this.changedBy(path))
    return wrap
  }

  changedBy (path) {
    const edit = this.changed.get(path)
    const note = document.createElement('small')
    note.className = 'changed-by'
    const when = new Date(edit.at * 1000).toLocaleString(language(), { dateStyle: 'medium', timeStyle: 'short' })
    note.textContent = edit.name ? `${t('changedBy', { name: edit.name })} · ${when}` : when
    return note
  }
}

function section (key, headingKey) {
  const card = document.createElement('section')
  card.className = 'card summary-section'
  card.dataset.section = key
  card.append(label('h2', headingKey))
  return card
}

function formatDate (iso) {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(iso)) return iso
  return new Date(`${iso}T00:00:00Z`).toLocaleDateString(language(), { dateStyle: 'long', timeZone: 'UTC' })
}
