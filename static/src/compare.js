// Compare two versions (or a version with now), field by field, with text differences marked.
import { label, t } from './i18n.js'
import { bdi, el, fieldLabel, withName } from './records-view.js'

export async function openCompare ({ session, base, page, from, to }) {
  const url = `${base}/compare?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`
  const response = await fetch(withName(url, session), { headers: { accept: 'application/json', ...session.authHeaders() } })
  if (!response.ok) return null
  const body = await response.json()
  const view = el('section', 'card compare-view')
  const close = label('button', 'close', 'secondary')
  close.type = 'button'
  close.addEventListener('click', () => view.remove())
  const heading = label('h2', 'compareTitle')
  const sides = el('p', 'hint')
  sides.append(label('span', 'from'), ': ', side(body.from), ' → ', label('span', 'to'), ': ', side(body.to))
  view.append(heading, close, sides)
  const changed = body.fields.filter((f) => f.kind !== 'same')
  if (changed.length === 0) view.append(label('p', 'noDifferences', 'hint'))
  const table = el('table', 'compare-table')
  for (const field of changed) {
    const row = el('tr', `compare-row compare-${field.kind}`)
    row.dataset.path = field.path
    const name = el('th', '', fieldLabel(field.path, field.item?.title))
    const cell = el('td', 'compare-text')
    cell.dir = 'auto'
    for (const segment of field.segments) {
      const tag = segment.op === 'insert' ? 'ins' : segment.op === 'delete' ? 'del' : 'span'
      cell.append(el(tag, '', segment.text))
    }
    row.append(name, label('td', field.kind, 'change-kind'), cell)
    table.append(row)
  }
  view.append(table)
  page.querySelector('.compare-view')?.remove()
  page.append(view)
  view.scrollIntoView()
  return view
}

function side (description) {
  if (description.id === 'current') return label('span', 'current')
  return bdi(description.kind === 'auto' ? t('autoVersion') : description.name)
}
