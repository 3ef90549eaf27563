// Share: an owner sees who has the IEP, with names and roles, adds a person (by e-mail, found
// in or invited through Supabase Auth by the server; by name in development mode), changes a
// role or the digest, removes someone. The server keeps the last owner.
import { addStrings, label, t } from './i18n.js'
import { apiFetch } from './session.js'

addStrings({
  en: {
    fillInDetails: 'Add their contact details',
    share: 'Share',
    shareTitle: 'People with access',
    addPerson: 'Add a person',
    emailAddress: 'E-mail address',
    personName: 'Name',
    role: 'Role',
    getsDigest: 'Gets change digests',
    add: 'Add',
    removeMember: 'Remove',
    invitedNote: 'Invited: {email} gets an e-mail to sign in.',
    lastOwner: 'An IEP needs an owner: make someone else owner first.',
    shareFailed: 'That did not work. Check the address and try again.',
  },
  ar: {
    fillInDetails: 'أضف بيانات التواصل',
    share: 'مشاركة',
    shareTitle: 'من يمكنه الوصول',
    addPerson: 'إضافة شخص',
    emailAddress: 'البريد الإلكتروني',
    personName: 'الاسم',
    role: 'الدور',
    getsDigest: 'يتلقى ملخص التغييرات',
    add: 'إضافة',
    removeMember: 'إزالة',
    invitedNote: 'تمت الدعوة: سيصل إلى {email} بريد لتسجيل الدخول.',
    lastOwner: 'لكل خطة مالك: اجعل شخصًا آخر مالكًا أولًا.',
    shareFailed: 'لم تنجح العملية. تحقّق من العنوان وحاول مرة أخرى.',
  },
})

const ROLES = ['owner', 'editor', 'viewer']

export function installShare ({ name, session, config, toolbar, page }) {
  const base = `/api/documents/${name.split('/').map(encodeURIComponent).join('/')}/members`
  const call = (path, options) => apiFetch(session, path, options)
  const button = label('button', 'share', 'secondary share-toggle')
  button.type = 'button'
  toolbar.append(button)
  const panel = document.createElement('aside')
  panel.className = 'card share-panel'
  panel.hidden = true
  page.append(panel)
  const message = document.createElement('p')
  message.className = 'hint share-message'
  message.setAttribute('role', 'status')

  button.addEventListener('click', async () => {
    panel.hidden = !panel.hidden
    if (!panel.hidden) await render()
  })

  const say = (key, values) => {
    message.textContent = t(key, values)
  }

  async function change (userId, role, digest) {
    const response = await call(`${base}/${encodeURIComponent(userId)}`, {
      method: 'PUT', body: JSON.stringify({ role, digest }),
    })
    if (response.status === 409) say('lastOwner')
    else if (!response.ok) say('shareFailed')
    await render()
    return response.ok
  }

  async function render () {
    const response = await call(base)
    const members = response.ok ? (await response.json()).members : []
    const rows = document.createElement('ul')
    rows.className = 'members'
    for (const member of members) {
      const row = document.createElement('li')
      row.dataset.userId = member.user_id
      const who = document.createElement('bdi')
      who.className = 'member-name'
      who.textContent = member.name || member.user_id
      const role = roleSelect(member.role)
      role.addEventListener('change', () => change(member.user_id, role.value, member.digest))
      const digest = checkbox(member.digest)
      digest.addEventListener('change', () => change(member.user_id, member.role, digest.checked))
      const remove = label('button', 'removeMember', 'secondary small')
      remove.type = 'button'
      remove.addEventListener('click', async () => {
        const removed = await call(`${base}/${encodeURIComponent(member.user_id)}`, { method: 'DELETE' })
        if (removed.status === 409) say('lastOwner')
        await render()
      })
      const digestLabel = document.createElement('label')
      digestLabel.append(digest, ' ', label('span', 'getsDigest'))
      row.append(who, role, digestLabel, remove)
      if (!member.name) {
        // No record yet (a parent without an account): the owner may fill in how to reach them.
        const fill = label('a', 'fillInDetails', 'fill-in')
        fill.href = `/settings?user=${encodeURIComponent(member.user_id)}`
        row.append(fill)
      }
      rows.append(row)
    }
    panel.replaceChildren(label('h2', 'shareTitle'), rows, addForm(), message)
  }

  function addForm () {
    const form = document.createElement('form')
    form.className = 'share-add'
    const byEmail = config.mode === 'supabase'
    const who = document.createElement('input')
    who.id = 'share-who'
    who.type = byEmail ? 'email' : 'text'
    who.required = true
    who.dir = 'auto'
    const caption = label('label', byEmail ? 'emailAddress' : 'personName')
    caption.htmlFor = who.id
    const role = roleSelect('viewer')
    role.setAttribute('aria-label', t('role'))
    const digest = checkbox(true)
    const digestLabel = document.createElement('label')
    digestLabel.append(digest, ' ', label('span', 'getsDigest'))
    const submit = label('button', 'add')
    submit.type = 'submit'
    form.append(label('h3', 'addPerson'), caption, who, role, digestLabel, submit)
    form.addEventListener('submit', async (event) => {
      event.preventDefault()
      let userId = `dev:${who.value.trim()}` // development identities are their names
      let invited = null
      if (byEmail) {
        const found = await call('/api/people/invitations', {
          method: 'POST', body: JSON.stringify({ email: who.value.trim(), language: document.documentElement.lang }),
        })
        if (!found.ok) {
          say('shareFailed')
          return
        }
        const person = await found.json()
        userId = person.user_id
        if (person.invited) invited = person.email
      }
      if (await change(userId, role.value, digest.checked) && invited) say('invitedNote', { email: invited })
    })
    return form
  }
}

function roleSelect (current) {
  const select = document.createElement('select')
  for (const role of ROLES) {
    const option = label('option', `role_${role}`)
    option.value = role
    select.append(option)
  }
  select.value = current
  return select
}

function checkbox (checked) {
  const box = document.createElement('input')
  box.type = 'checkbox'
  box.checked = checked
  return box
}
