// UI strings in English and Arabic; `dir` follows the chosen language.

const STRINGS = {
  en: {
    appName: 'IEP editor',
    switchTo: 'العربية',
    connected: 'Connected',
    connecting: 'Connecting…',
    reconnecting: 'Reconnecting…',
    offline: 'Offline: changes are kept on this device',
    refused: 'Access refused',
    signInTitle: 'Sign in',
    displayName: 'Your name',
    email: 'Email',
    password: 'Password',
    signIn: 'Sign in',
    sendLink: 'Email me a sign-in link',
    linkSent: 'Check your email for the sign-in link.',
    signOut: 'Sign out',
    devMode: 'Development mode: anyone may edit.',
    documents: 'Your IEPs',
    noDocuments: 'No IEPs yet.',
    listUnavailable: 'The list of IEPs is not available; open one by name.',
    openByName: 'Open by name',
    documentName: 'Document name',
    open: 'Open',
    newIep: 'New IEP',
    studentName: "Student's name",
    createFailed: 'The IEP could not be created. Try again, or ask an administrator.',
    saving: 'Saving…',
    allSaved: 'All changes saved',
    offlineKept_one: 'Offline — 1 change kept on this device',
    offlineKept_other: 'Offline — {n} changes kept on this device',
    undo: 'Undo',
    redo: 'Redo',
    removedItem: 'Removed “{title}”',
    removedUntitled: 'Removed',
    noAccess: "You don't have access to this IEP",
    noAccessHint: 'Ask the IEP’s owner to share it with you.',
    notFound: 'Not found',
    notFoundHint: 'There is no IEP with this name that you can open.',
    backToList: 'Back to your IEPs',
    numberOnly: 'A number of minutes, e.g. 30',
    create: 'Create',
    role_owner: 'owner',
    role_editor: 'editor',
    role_viewer: 'viewer',
    updated: 'updated',
    readOnly: 'Read-only: you can follow this IEP live but not change it.',
    writeRefused: 'The server refused a change: you have read-only access. Nothing was saved.',
    here: 'Here now',
    you: 'you',
    editing: 'editing',
    meta: 'Document',
    title: 'Title',
    documentLanguage: 'Main language',
    lang_ar: 'Arabic',
    lang_en: 'English',
    student: 'Student',
    name: 'Name',
    dateOfBirth: 'Date of birth',
    grade: 'Grade',
    school: 'School',
    primaryLanguage: 'Primary language',
    diagnosis: 'Diagnosis',
    guardianName: 'Guardian',
    goals: 'Goals',
    addGoal: 'Add goal',
    area: 'Area',
    baseline: 'Baseline',
    target: 'Target',
    status: 'Status',
    status_not_started: 'Not started',
    status_in_progress: 'In progress',
    status_met: 'Met',
    status_discontinued: 'Discontinued',
    accommodations: 'Accommodations',
    addAccommodation: 'Add accommodation',
    details: 'Details',
    services: 'Services',
    addService: 'Add service',
    provider: 'Provider',
    frequency: 'Frequency',
    minutesPerSession: 'Minutes per session',
    notes: 'Notes',
    moveUp: 'Move up',
    moveDown: 'Move down',
    remove: 'Remove',
    untitled: 'Untitled',
  },
  ar: {
    appName: 'محرر الخطة التربوية الفردية',
    switchTo: 'English',
    connected: 'متصل',
    connecting: 'جارٍ الاتصال…',
    reconnecting: 'جارٍ إعادة الاتصال…',
    offline: 'غير متصل: التغييرات محفوظة على هذا الجهاز',
    refused: 'تم رفض الوصول',
    signInTitle: 'تسجيل الدخول',
    displayName: 'اسمك',
    email: 'البريد الإلكتروني',
    password: 'كلمة المرور',
    signIn: 'دخول',
    sendLink: 'أرسل لي رابط الدخول',
    linkSent: 'تحقق من بريدك الإلكتروني للحصول على رابط الدخول.',
    signOut: 'تسجيل الخروج',
    devMode: 'وضع التطوير: يمكن لأي شخص التعديل.',
    documents: 'خططك التربوية',
    noDocuments: 'لا توجد خطط بعد.',
    listUnavailable: 'قائمة الخطط غير متاحة؛ افتح خطة باسمها.',
    openByName: 'فتح باسم الوثيقة',
    documentName: 'اسم الوثيقة',
    open: 'فتح',
    newIep: 'خطة جديدة',
    studentName: 'اسم الطالب',
    createFailed: 'تعذّر إنشاء الخطة. حاول مرة أخرى أو اطلب المساعدة من المسؤول.',
    saving: 'جارٍ الحفظ…',
    allSaved: 'تم حفظ كل التغييرات',
    offlineKept_one: 'غير متصل — تغيير واحد محفوظ على هذا الجهاز',
    offlineKept_two: 'غير متصل — تغييران محفوظان على هذا الجهاز',
    offlineKept_few: 'غير متصل — {n} تغييرات محفوظة على هذا الجهاز',
    offlineKept_other: 'غير متصل — {n} تغييرًا محفوظًا على هذا الجهاز',
    undo: 'تراجع',
    redo: 'إعادة',
    removedItem: 'تم حذف «{title}»',
    removedUntitled: 'تم الحذف',
    noAccess: 'ليست لديك صلاحية الوصول إلى هذه الخطة',
    noAccessHint: 'اطلب من مالك الخطة مشاركتها معك.',
    notFound: 'غير موجودة',
    notFoundHint: 'لا توجد خطة بهذا الاسم يمكنك فتحها.',
    backToList: 'العودة إلى خططك',
    numberOnly: 'عدد الدقائق، مثل 30',
    create: 'إنشاء',
    role_owner: 'مالك',
    role_editor: 'محرر',
    role_viewer: 'مشاهد',
    updated: 'آخر تحديث',
    readOnly: 'للقراءة فقط: يمكنك متابعة الخطة مباشرة دون تعديلها.',
    writeRefused: 'رفض الخادم التغيير: لديك صلاحية القراءة فقط. لم يُحفظ شيء.',
    here: 'الموجودون الآن',
    you: 'أنت',
    editing: 'يحرر',
    meta: 'الوثيقة',
    title: 'العنوان',
    documentLanguage: 'اللغة الرئيسية',
    lang_ar: 'العربية',
    lang_en: 'الإنجليزية',
    student: 'الطالب',
    name: 'الاسم',
    dateOfBirth: 'تاريخ الميلاد',
    grade: 'الصف',
    school: 'المدرسة',
    primaryLanguage: 'اللغة الأم',
    diagnosis: 'التشخيص',
    guardianName: 'ولي الأمر',
    goals: 'الأهداف',
    addGoal: 'إضافة هدف',
    area: 'المجال',
    baseline: 'المستوى الحالي',
    target: 'المستوى المستهدف',
    status: 'الحالة',
    status_not_started: 'لم يبدأ',
    status_in_progress: 'قيد التنفيذ',
    status_met: 'تحقق',
    status_discontinued: 'متوقف',
    accommodations: 'التسهيلات',
    addAccommodation: 'إضافة تسهيل',
    details: 'التفاصيل',
    services: 'الخدمات',
    addService: 'إضافة خدمة',
    provider: 'مقدم الخدمة',
    frequency: 'التكرار',
    minutesPerSession: 'دقائق الجلسة',
    notes: 'ملاحظات',
    moveUp: 'تحريك لأعلى',
    moveDown: 'تحريك لأسفل',
    remove: 'حذف',
    untitled: 'بدون عنوان',
  },
}

const LANGUAGE_KEY = 'iep-ui-language'

let current = initialLanguage()

function initialLanguage () {
  const stored = localStorage.getItem(LANGUAGE_KEY)
  if (stored === 'ar' || stored === 'en') return stored
  return (navigator.language || '').toLowerCase().startsWith('ar') ? 'ar' : 'en'
}

export function language () {
  return current
}

export function t (key, values = {}) {
  const text = STRINGS[current][key] ?? STRINGS.en[key] ?? key
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole))
}

/** A count in words, by the language's plural rules (Arabic has six forms). */
export function plural (key, n) {
  const form = new Intl.PluralRules(current).select(n)
  const table = STRINGS[current]
  return t(`${key}_${form}` in table ? `${key}_${form}` : `${key}_other`, { n })
}

/** A text node's owner that follows language switches: `<span data-i18n="key">`. */
export function label (tag, key, className) {
  const el = document.createElement(tag)
  el.dataset.i18n = key
  el.textContent = t(key)
  if (className) el.className = className
  return el
}

/** Re-translate everything marked with data-i18n / data-i18n-title and set lang + dir. */
export function applyLanguage () {
  const root = document.documentElement
  root.lang = current
  root.dir = current === 'ar' ? 'rtl' : 'ltr'
  for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n)
  for (const el of document.querySelectorAll('[data-i18n-title]')) {
    el.title = t(el.dataset.i18nTitle)
    el.setAttribute('aria-label', el.title)
  }
  for (const el of document.querySelectorAll('[data-i18n-placeholder]')) {
    el.placeholder = t(el.dataset.i18nPlaceholder)
  }
  const toggle = document.getElementById('language-switch')
  if (toggle) {
    toggle.textContent = t('switchTo')
    toggle.lang = current === 'ar' ? 'en' : 'ar'
  }
  for (const listener of listeners) listener(current)
}

const listeners = new Set()

export function onLanguageChange (listener) {
  listeners.add(listener)
}

export function setLanguage (lang) {
  current = lang
  localStorage.setItem(LANGUAGE_KEY, lang)
  applyLanguage()
}

export function installLanguageSwitch () {
  const toggle = document.getElementById('language-switch')
  toggle.addEventListener('click', () => setLanguage(current === 'ar' ? 'en' : 'ar'))
  applyLanguage()
}

/** More strings, from a feature's own module (`{ en: {...}, ar: {...} }`). */
export function addStrings (more) {
  for (const [lang, table] of Object.entries(more)) {
    for (const [key, text] of Object.entries(table)) {
      // One table for every module: a second meaning for a key would silently replace the first.
      if (key in STRINGS[lang] && STRINGS[lang][key] !== text) throw new Error(`i18n: "${key}" means two things`)
      STRINGS[lang][key] = text
    }
  }
}

/** "3 minutes ago" in the page's language, from epoch seconds. */
export function relativeTime (seconds) {
  const format = new Intl.RelativeTimeFormat(current, { numeric: 'auto' })
  const diff = seconds - Date.now() / 1000
  const steps = [[60, 'second'], [3600, 'minute'], [86400, 'hour'], [Infinity, 'day']]
  let unit = 1
  for (const [limit, name] of steps) {
    if (Math.abs(diff) < limit) return format.format(Math.round(diff / unit), name)
    unit = limit
  }
  return ''
}
