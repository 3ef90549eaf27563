// Read-only rendering of an IEP's content (plain JSON from the server), and field labels.
import { t } from './i18n.js'

const SECTIONS = ['meta', 'student', 'goals', 'accommodations', 'services', 'notes']
const HIDDEN = new Set(['id', 'schemaVersion'])

export function el (tag, className, text) {
  const node = document.createElement(tag)
  if (className) node.className = className
  if (text !== undefined) node.textContent = text
  return node
}

export function bdi (text) {
  const node = document.createElement('bdi')
  node.textContent = text
  return node
}

export function whenText (seconds) {
  return new Date(seconds * 1000).toLocaleString(document.documentElement.lang || 'en')
}

/** "goals/<id>/title" -> "Goals › Reading fluency › Title" in the reader's language. */
export function fieldLabel (path, itemTitle) {
  const parts = path.split('/')
  const names = [t(parts[0])]
  if (parts.length === 3) names.push(itemTitle || '…')
  if (parts.length > 1) names.push(t(parts[parts.length - 1]))
  return names.join(' › ')
}

function value (text) {
  const node = el('div', 'value')
  node.dir = 'auto'
  node.textContent = typeof text === 'string' ? text : JSON.stringify(text)
  return node
}

/** The whole IEP, read-only, section by section. */
export function renderContent (content) {
  const wrap = el('div', 'iep-readonly')
  const names = [...SECTIONS.filter((s) => s in content), ...Object.keys(content).filter((s) => !SECTIONS.includes(s))]
  for (const name of names) {
    const card = el('section', 'card section')
    card.dataset.section = name
    card.append(el('h2', '', t(name)))
    const data = content[name]
    if (Array.isArray(data)) {
      const list = el('ol', 'items')
      for (const item of data) {
        const li = el('li', 'item')
        const fields = el('div', 'item-fields')
        for (const [key, v] of Object.entries(item || {})) {
          if (HIDDEN.has(key)) continue
          const row = el('div', 'field')
          row.append(el('label', '', t(key)), value(key === 'status' ? t(`status_${v}`) : v))
          fields.append(row)
        }
        li.append(fields)
        list.append(li)
      }
      card.append(list)
    } else if (data && typeof data === 'object') {
      const body = el('div', 'section-body')
      for (const [key, v] of Object.entries(data)) {
        if (HIDDEN.has(key)) continue
        const row = el('div', 'field')
        row.append(el('label', '', t(key === 'language' ? 'documentLanguage' : key)), value(key === 'language' ? t(`lang_${v}`) : v))
        body.append(row)
      }
      card.append(body)
    } else {
      card.append(value(data ?? ''))
    }
    wrap.append(card)
  }
  return wrap
}

/** Development mode knows a caller by the name they typed (`?name=`); tokens go in headers. */
export function withName (path, session) {
  const name = session.params?.().name
  if (!name) return path
  return `${path}${path.includes('?') ? '&' : '?'}name=${encodeURIComponent(name)}`
}
