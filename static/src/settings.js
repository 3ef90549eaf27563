// `/settings`: how a person is reached (name, phone, e-mail, language, time zone, digits, and
// which channels), with a test message per channel. Admins open anyone's: `/settings?user=ID`.
import { addStrings, label, t } from './i18n.js'
import { apiFetch } from './session.js'

addStrings({
  en: {
    settings: 'Settings',
    settingsTitle: 'How we reach you',
    settingsFor: 'How we reach {name}',
    personName: 'Name',
    phone: 'Mobile number',
    phoneHint: 'With the country code, e.g. +966 50 123 4567',
    settingsEmail: 'E-mail',
    uiLanguage: 'Language of messages',
    timeZone: 'Time zone',
    digits: 'Numbers',
    digitsLatin: '42 (Latin digits)',
    digitsArabic: '٤٢ (Arabic digits)',
    channels: 'Send me messages by',
    channel_whatsapp: 'WhatsApp',
    channel_sms: 'SMS',
    channel_email: 'E-mail',
    channel_in_app: 'In the app',
    sendTest: 'Send me a test',
    testQueued: 'A test message is on its way.',
    save: 'Save',
    saved: 'Saved.',
    fixProblems: 'Please correct the fields marked below.',
    saveFailed: 'Could not save; try again.',
    quietHours: 'Quiet hours',
    quietHoursHint: 'No messages then, e.g. 21:00-07:00. Empty: the centre\'s; "off": any time.',
    tryEarlier: 'Try this one earlier',
    pushOnDevice: 'Notifications on this device',
    pushBlocked: "Notifications are blocked for this site: allow them in the browser's site settings, then try again.",
    pushFailed: 'This browser could not turn on notifications.',
  },
  ar: {
    settings: 'الإعدادات',
    settingsTitle: 'كيف نتواصل معك',
    settingsFor: 'كيف نتواصل مع {name}',
    personName: 'الاسم',
    phone: 'رقم الجوال',
    phoneHint: 'مع رمز الدولة، مثل ‎+966 50 123 4567',
    settingsEmail: 'البريد الإلكتروني',
    uiLanguage: 'لغة الرسائل',
    timeZone: 'المنطقة الزمنية',
    digits: 'الأرقام',
    digitsLatin: '42 (أرقام لاتينية)',
    digitsArabic: '٤٢ (أرقام عربية)',
    channels: 'أرسلوا لي الرسائل عبر',
    channel_whatsapp: 'واتساب',
    channel_sms: 'رسائل SMS',
    channel_email: 'البريد الإلكتروني',
    channel_in_app: 'داخل التطبيق',
    sendTest: 'أرسل لي رسالة تجريبية',
    testQueued: 'الرسالة التجريبية في الطريق.',
    save: 'حفظ',
    saved: 'تم الحفظ.',
    fixProblems: 'يرجى تصحيح الحقول المشار إليها أدناه.',
    saveFailed: 'تعذّر الحفظ؛ حاول مرة أخرى.',
    quietHours: 'ساعات الهدوء',
    quietHoursHint: 'لا رسائل خلالها، مثل 21:00-07:00. فارغ: ساعات المركز؛ «off»: في أي وقت.',
    tryEarlier: 'جرّبها قبل غيرها',
    pushOnDevice: 'الإشعارات على هذا الجهاز',
    pushBlocked: 'الإشعارات محظورة لهذا الموقع: اسمح بها من إعدادات الموقع في المتصفح ثم حاول مرة أخرى.',
    pushFailed: 'تعذّر على هذا المتصفح تشغيل الإشعارات.',
  },
})

const CHANNELS = ['whatsapp', 'sms', 'email', 'in_app']

function field (key, control, hintKey) {
  const wrap = document.createElement('div')
  wrap.className = 'field'
  control.id = `setting-${key}`
  const caption = label('label', key)
  caption.htmlFor = control.id
  wrap.append(caption, control)
  if (hintKey) {
    const hint = label('p', hintKey, 'hint')
    hint.id = `${control.id}-hint`
    control.setAttribute('aria-describedby', hint.id)
    wrap.append(hint)
  }
  const problem = document.createElement('p')
  problem.className = 'field-problem'
  problem.setAttribute('role', 'alert')
  wrap.append(problem)
  return wrap
}

function select (options) {
  const control = document.createElement('select')
  for (const [value, key] of options) {
    const option = label('option', key)
    option.value = value
    control.append(option)
  }
  return control
}

export async function settingsPage (app, session) {
  const userId = new URLSearchParams(location.search).get('user') || session.userId
  const base = `/api/people/${encodeURIComponent(userId)}`
  const call = (path, options) => apiFetch(session, path, options)
  const found = await call(base)
  const person = found.ok ? await found.json() : { name: session.name, language: document.documentElement.lang || 'en', channels: { in_app: true } }

  const form = document.createElement('form')
  form.className = 'card settings'
  const heading = userId === session.userId
    ? label('h1', 'settingsTitle')
    : Object.assign(document.createElement('h1'), { textContent: t('settingsFor', { name: person.name || userId }) })
  const status = document.createElement('p')
  status.className = 'hint settings-status'
  status.setAttribute('role', 'status')

  const name = Object.assign(document.createElement('input'), { dir: 'auto', value: person.name || '' })
  const phone = Object.assign(document.createElement('input'), { type: 'tel', dir: 'ltr', value: person.phone || '', autocomplete: 'tel' })
  const shownPhone = document.createElement('p')
  shownPhone.className = 'hint phone-display'
  shownPhone.dir = 'ltr'
  shownPhone.textContent = person.phone_display || ''
  const email = Object.assign(document.createElement('input'), { type: 'email', dir: 'ltr', value: person.email || '' })
  const language = select([['ar', 'lang_ar'], ['en', 'lang_en']])
  language.value = person.language || 'en'
  const zones = document.createElement('datalist')
  zones.id = 'time-zones'
  for (const zone of Intl.supportedValuesOf?.('timeZone') ?? []) zones.append(Object.assign(document.createElement('option'), { value: zone }))
  const timezone = Object.assign(document.createElement('input'), { dir: 'ltr', value: person.timezone || Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC' })
  timezone.setAttribute('list', zones.id)
  const digits = select([['latin', 'digitsLatin'], ['arabic', 'digitsArabic']])
  digits.value = person.digits || 'latin'
  const quiet = Object.assign(document.createElement('input'), { dir: 'ltr', value: person.quiet_hours || '', placeholder: '21:00-07:00' })

  const channels = document.createElement('fieldset')
  channels.className = 'channels'
  channels.append(label('legend', 'channels'))
  const switches = {}
  const ordered = [...(person.channel_order || []), ...CHANNELS.filter((c) => !(person.channel_order || []).includes(c))]
  for (const channel of ordered) {
    const row = document.createElement('div')
    row.className = 'channel-row'
    const box = Object.assign(document.createElement('input'), { type: 'checkbox', id: `channel-${channel}`, checked: Boolean(person.channels?.[channel]) })
    const caption = label('label', `channel_${channel}`)
    caption.htmlFor = box.id
    const test = label('button', 'sendTest', 'secondary small')
    test.type = 'button'
    test.dataset.channel = channel
    test.addEventListener('click', async () => {
      status.textContent = ''
      const response = await call(`${base}/test`, { method: 'POST', body: JSON.stringify({ channel }) })
      const answer = await response.json().catch(() => ({}))
      status.textContent = response.ok ? t('testQueued') : (answer.error || t('saveFailed'))
    })
    const problem = document.createElement('p')
    problem.className = 'field-problem'
    problem.id = `channels.${channel}-problem`
    const up = document.createElement('button')
    up.type = 'button'
    up.className = 'secondary small move-up'
    up.textContent = '↑'
    up.dataset.i18nTitle = 'tryEarlier'
    up.title = t('tryEarlier')
    up.setAttribute('aria-label', t('tryEarlier'))
    up.addEventListener('click', () => {
      const previous = row.previousElementSibling
      if (previous?.classList.contains('channel-row')) channels.insertBefore(row, previous)
    })
    row.dataset.rowChannel = channel
    row.append(up, box, caption, test, problem)
    channels.append(row)
    switches[channel] = box
  }
  // Not awaited: a browser whose service worker never starts still gets the rest of the page.
  if (userId === session.userId) deviceSwitch(channels, call, status).catch(() => {})
  const save = label('button', 'save')
  save.type = 'submit'
  const fields = {
    name: field('personName', name),
    phone: field('phone', phone, 'phoneHint'),
    email: field('settingsEmail', email),
    language: field('uiLanguage', language),
    timezone: field('timeZone', timezone),
    digits: field('digits', digits),
    quiet_hours: field('quietHours', quiet, 'quietHoursHint'),
  }
  fields.phone.append(shownPhone)
  form.append(heading, status, ...Object.values(fields), zones, channels, save)
  app.replaceChildren(form)

  function showProblems (problems) {
    for (const element of form.querySelectorAll('.field-problem')) element.textContent = ''
    for (const element of form.querySelectorAll('[aria-invalid]')) element.removeAttribute('aria-invalid')
    for (const [key, message] of Object.entries(problems)) {
      const channel = key.startsWith('channels.') ? key.slice('channels.'.length) : null
      const holder = channel ? switches[channel]?.parentElement : fields[key]
      const problem = holder?.querySelector('.field-problem')
      if (problem) problem.textContent = message
      const control = channel ? switches[channel] : holder?.querySelector('input, select')
      control?.setAttribute('aria-invalid', 'true')
    }
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault()
    const body = {
      name: name.value.trim(),
      phone: phone.value.replace(/[\s()-]/g, '') || null,
      email: email.value.trim() || null,
      language: language.value,
      timezone: timezone.value.trim(),
      digits: digits.value,
      channels: Object.fromEntries(CHANNELS.map((c) => [c, switches[c].checked])),
      quiet_hours: quiet.value.trim() || null,
      channel_order: [...channels.querySelectorAll('.channel-row[data-row-channel]')].map((row) => row.dataset.rowChannel),
    }
    const response = await call(base, { method: 'PUT', body: JSON.stringify(body) })
    const answer = await response.json().catch(() => ({}))
    if (response.ok) {
      showProblems({})
      shownPhone.textContent = answer.phone_display || ''
      status.textContent = t('saved')
    } else if (response.status === 422) {
      showProblems(answer.problems || {})
      status.textContent = t('fixProblems')
    } else {
      status.textContent = answer.error || t('saveFailed')
    }
  })
}

function base64UrlToBytes (text) {
  const raw = atob(text.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (text.length % 4)) % 4))
  return Uint8Array.from(raw, (c) => c.charCodeAt(0))
}

/** Web Push for this browser: shown only when the server has it and the browser can. */
async function deviceSwitch (channels, call, status) {
  if (!('serviceWorker' in navigator) || !('PushManager' in window)) return
  const key = await call('/api/push/key')
  if (!key.ok) return
  const { public_key: publicKey } = await key.json()
  const registration = await navigator.serviceWorker.ready
  const current = await registration.pushManager.getSubscription()
  const row = document.createElement('div')
  row.className = 'channel-row'
  const box = Object.assign(document.createElement('input'), { type: 'checkbox', id: 'channel-push', checked: Boolean(current) })
  const caption = label('label', 'pushOnDevice')
  caption.htmlFor = box.id
  row.append(box, caption)
  channels.append(row)
  box.addEventListener('change', async () => {
    status.textContent = ''
    try {
      if (box.checked) {
        if (await Notification.requestPermission() !== 'granted') {
          box.checked = false
          status.textContent = t('pushBlocked')
          return
        }
        const subscription = await registration.pushManager.subscribe({
          userVisibleOnly: true,
          applicationServerKey: base64UrlToBytes(publicKey),
        })
        const saved = await call('/api/push/subscriptions', { method: 'POST', body: JSON.stringify(subscription.toJSON()) })
        if (!saved.ok) throw new Error('refused')
      } else {
        const subscription = await registration.pushManager.getSubscription()
        if (subscription) {
          await call('/api/push/subscriptions', { method: 'DELETE', body: JSON.stringify({ endpoint: subscription.endpoint }) })
          await subscription.unsubscribe()
        }
      }
    } catch {
      box.checked = Boolean(await registration.pushManager.getSubscription())
      status.textContent = t('pushFailed')
    }
  })
}
