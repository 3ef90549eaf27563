// The list of IEPs: student, title, who changed it last and when, your role; search that
// ignores case, accents and Arabic letter variants; sort; owners archive and restore.
import { addStrings, label, language, onLanguageChange, relativeTime, t } from './i18n.js'

addStrings({
  en: {
    searchIeps: 'Search by student or title',
    sortBy: 'Sort',
    sortRecent: 'Last changed',
    sortStudent: 'Student name',
    showArchived: 'Archived IEPs',
    showCurrent: 'Back to current IEPs',
    noArchived: 'No archived IEPs.',
    noMatches: 'No IEP matches this search.',
    untitledStudent: 'Student without a name',
    listChangedBy: 'Changed by {name}, {when}',
    listChangedAt: 'Changed {when}',
    neverChanged: 'No changes yet',
    archive: 'Archive',
    unarchive: 'Restore',
    archivedNotice: 'Archived: {name}. It is kept and can be restored.',
    archiveFailed: 'Could not archive; try again.',
  },
  ar: {
    searchIeps: 'ابحث باسم الطالب أو العنوان',
    sortBy: 'الترتيب',
    sortRecent: 'آخر تعديل',
    sortStudent: 'اسم الطالب',
    showArchived: 'الخطط المؤرشفة',
    showCurrent: 'العودة إلى الخطط الحالية',
    noArchived: 'لا توجد خطط مؤرشفة.',
    noMatches: 'لا توجد خطة تطابق هذا البحث.',
    untitledStudent: 'طالب بلا اسم',
    listChangedBy: 'عدّلها {name}، {when}',
    listChangedAt: 'عُدّلت {when}',
    neverChanged: 'لا تعديلات بعد',
    archive: 'أرشفة',
    unarchive: 'استعادة',
    archivedNotice: 'أُرشفت: {name}. هي محفوظة ويمكن استعادتها.',
    archiveFailed: 'تعذّرت الأرشفة؛ حاول مرة أخرى.',
  },
})

// After NFKD, hamza and madda on alef (أ إ آ) and Latin accents are separate marks, dropped
// with the harakat; what is left of the variants people type either way is mapped here.
const LETTER_VARIANTS = { 'ٱ': 'ا', 'ة': 'ه', 'ى': 'ي' }

/** Text as search compares it: no case, accents, Arabic marks, tatweel or letter variants. */
export function foldForSearch (text) {
  return (text || '')
    .normalize('NFKD')
    .replace(/[\p{Mn}\u0640]/gu, '')
    .replace(/[ٱةى]/g, (letter) => LETTER_VARIANTS[letter])
    .replace(/[\u0660-\u0669]/g, (digit) => String(digit.charCodeAt(0) - 0x0660))
    .toLocaleLowerCase('en')
    .replace(/\s+/g, ' ')
    .trim()
}

async function fetchDocuments (session, archived) {
  try {
    const query = archived ? '?archived=true' : ''
    const response = await fetch('/api/documents' + query, {
      headers: { accept: 'application/json', ...session.authHeaders() },
    })
    if (!response.ok) return { documents: null, mayCreate: false }
    const body = await response.json()
    return { documents: Array.isArray(body.documents) ? body.documents : null, mayCreate: body.may_create === true }
  } catch {
    return { documents: null, mayCreate: false }
  }
}

async function setArchived (session, name, archived) {
  const response = await fetch(`/api/documents/${name.split('/').map(encodeURIComponent).join('/')}/archived`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json', accept: 'application/json', ...session.authHeaders() },
    body: JSON.stringify({ archived }),
  })
  if (!response.ok) throw new Error(t('archiveFailed'))
}

/**
 * The list card. `docHref(name)` is an IEP's address. Returns `{ card, documents, mayCreate }`
 * (documents: null when the list could not be read).
 */
export async function documentsList (session, docHref) {
  const card = document.createElement('section')
  card.className = 'card'
  const heading = label('h1', 'documents')
  const controls = document.createElement('div')
  controls.className = 'list-controls'
  const search = document.createElement('input')
  search.type = 'search'
  search.dir = 'auto'
  search.dataset.i18nPlaceholder = 'searchIeps'
  search.placeholder = t('searchIeps')
  search.setAttribute('aria-label', t('searchIeps'))
  const sort = document.createElement('select')
  sort.setAttribute('aria-label', t('sortBy'))
  for (const key of ['sortRecent', 'sortStudent']) {
    const option = label('option', key)
    option.value = key
    sort.append(option)
  }
  const archivedToggle = label('button', 'showArchived', 'secondary')
  archivedToggle.type = 'button'
  controls.append(search, sort, archivedToggle)
  const list = document.createElement('ul')
  list.className = 'documents'
  const notice = document.createElement('p')
  notice.className = 'hint list-notice'
  notice.setAttribute('role', 'status')
  card.append(heading, controls, notice, list)

  let showingArchived = false
  let loaded = await fetchDocuments(session, false)
  const first = loaded

  function render () {
    const documents = loaded.documents
    notice.textContent = ''
    if (documents === null) {
      list.replaceChildren()
      notice.textContent = t('listUnavailable')
      return
    }
    if (documents.length === 0) {
      list.replaceChildren()
      notice.textContent = t(showingArchived ? 'noArchived' : 'noDocuments')
      return
    }
    const wanted = foldForSearch(search.value)
    const shown = documents.filter((entry) => !wanted ||
      foldForSearch(`${entry.student_name || ''} ${entry.title || ''}`).includes(wanted))
    shown.sort(sort.value === 'sortStudent' ? byStudent : byLastChange)
    if (shown.length === 0) notice.textContent = t('noMatches')
    list.replaceChildren(...shown.map(row))
  }

  function row (entry) {
    const item = document.createElement('li')
    item.dataset.name = entry.name
    const link = document.createElement('a')
    link.href = docHref(entry.name)
    const student = document.createElement('bdi')
    student.className = 'student'
    student.textContent = entry.student_name || (entry.student_name === '' ? t('untitledStudent') : entry.name)
    link.append(student)
    const role = label('span', `role_${entry.role}`, `role role-${entry.role}`)
    const top = document.createElement('div')
    top.className = 'row-top'
    top.append(link, ' ', role)
    if (entry.role === 'owner') top.append(' ', archiveButton(entry))
    item.append(top)
    if (entry.title) {
      const title = document.createElement('bdi')
      title.className = 'title'
      title.textContent = entry.title
      item.append(title)
    }
    item.append(changeLine(entry))
    return item
  }

  function archiveButton (entry) {
    const button = label('button', showingArchived ? 'unarchive' : 'archive', 'secondary small')
    button.type = 'button'
    button.addEventListener('click', async () => {
      button.disabled = true
      try {
        await setArchived(session, entry.name, !showingArchived)
      } catch (error) {
        notice.textContent = error.message
        button.disabled = false
        return
      }
      loaded = { ...loaded, documents: loaded.documents.filter((d) => d.name !== entry.name) }
      render()
      if (!showingArchived) {
        notice.textContent = t('archivedNotice', { name: entry.student_name || entry.name })
      }
    })
    return button
  }

  archivedToggle.addEventListener('click', async () => {
    showingArchived = !showingArchived
    archivedToggle.dataset.i18n = showingArchived ? 'showCurrent' : 'showArchived'
    archivedToggle.textContent = t(archivedToggle.dataset.i18n)
    loaded = await fetchDocuments(session, showingArchived)
    render()
  })
  search.addEventListener('input', render)
  sort.addEventListener('change', render)
  onLanguageChange(() => {
    search.setAttribute('aria-label', t('searchIeps'))
    sort.setAttribute('aria-label', t('sortBy'))
    render()
  })
  render()
  return { card, documents: first.documents, mayCreate: first.mayCreate }
}

function changeLine (entry) {
  const line = document.createElement('p')
  line.className = 'hint changed'
  if (!entry.updated_at) {
    line.textContent = t('neverChanged')
    return line
  }
  const at = Date.parse(entry.updated_at) / 1000
  const when = relativeTime(at)
  const editor = entry.last_editor
  const time = document.createElement('time')
  time.dateTime = entry.updated_at
  time.title = new Date(entry.updated_at).toLocaleString(language())
  if (editor) {
    time.textContent = t('listChangedBy', { name: editor.name || editor.user_id, when })
  } else {
    time.textContent = t('listChangedAt', { when })
  }
  line.append(time)
  return line
}

function byLastChange (a, b) {
  return (b.updated_at || '').localeCompare(a.updated_at || '')
}

function byStudent (a, b) {
  return (a.student_name || a.name).localeCompare(b.student_name || b.name, language())
}
