// Who is using the page: a Supabase session in "supabase" mode, a display name in development.
import { createClient } from '@supabase/supabase-js'
import { label, t } from './i18n.js'

const NAME_KEY = 'iep-display-name'
const AUTH_STORAGE_KEY = 'iep-collab-auth'

/** A JSON request to our API as the signed-in person. */
export function apiFetch (session, path, options = {}) {
  return fetch(path, {
    ...options,
    headers: { accept: 'application/json', 'content-type': 'application/json', ...session.authHeaders() },
  })
}

export async function loadConfig () {
  const response = await fetch('/api/config', { headers: { accept: 'application/json' } })
  if (!response.ok) throw new Error(`config endpoint answered ${response.status}`)
  return response.json()
}

/**
 * Resolves to a session: { userKey, userId, name, params, apiParams, authHeaders(), refresh(), signOut() }
 * (`userId`: the id the server knows the person by).
 * Renders a sign-in form into `container` when nobody is signed in yet.
 */
export async function signIn (config, container) {
  if (config.mode === 'supabase') return supabaseSession(config, container)
  return developmentSession(container)
}

function developmentSession (container) {
  const stored = localStorage.getItem(NAME_KEY)
  if (stored) return Promise.resolve(developmentIdentity(stored))
  return new Promise((resolve) => {
    const form = signInForm([['display-name', 'displayName', 'text', 'name']])
    form.prepend(label('p', 'devMode', 'hint'))
    form.addEventListener('submit', (event) => {
      event.preventDefault()
      const name = form.querySelector('#display-name').value.trim()
      if (!name) return
      localStorage.setItem(NAME_KEY, name)
      resolve(developmentIdentity(name))
    })
    container.replaceChildren(form)
    form.querySelector('input').focus()
  })
}

function developmentIdentity (name) {
  return {
    userKey: `dev:${name}`,
    userId: `dev:${name}`,
    name,
    params: () => ({ name }),
    apiParams: () => ({ name }), // the API knows a development user by name only
    authHeaders: () => ({}),
    refresh: async () => {},
    signOut: async () => {
      localStorage.removeItem(NAME_KEY)
      location.reload()
    },
  }
}

async function supabaseSession (config, container) {
  if (!config.supabaseUrl || !config.supabaseAnonKey) {
    throw new Error('Sign-in is not configured: set SUPABASE_URL and SUPABASE_ANON_KEY on the server.')
  }
  const supabase = createClient(config.supabaseUrl, config.supabaseAnonKey, {
    auth: { storageKey: AUTH_STORAGE_KEY, persistSession: true, autoRefreshToken: true },
  })
  let { data: { session } } = await supabase.auth.getSession()
  if (!session) session = await supabaseSignInForm(supabase, container)
  let current = session
  supabase.auth.onAuthStateChange((_event, next) => {
    if (next) current = next
  })
  const user = current.user || {}
  const name = user.user_metadata?.full_name || user.email || user.id || '?'
  return {
    userKey: `sb:${user.id}`,
    userId: user.id,
    name,
    params: () => ({ token: current.access_token }),
    apiParams: () => ({}), // the bearer header says who
    authHeaders: () => ({ authorization: `Bearer ${current.access_token}` }),
    refresh: async () => {
      const { data } = await supabase.auth.refreshSession()
      if (data.session) current = data.session
    },
    signOut: async () => {
      await supabase.auth.signOut()
      location.reload()
    },
  }
}

function supabaseSignInForm (supabase, container) {
  return new Promise((resolve) => {
    const form = signInForm([
      ['email', 'email', 'email', 'email'],
      ['password', 'password', 'password', 'current-password'],
    ])
    const message = document.createElement('p')
    message.className = 'hint'
    message.setAttribute('role', 'alert')
    const link = label('button', 'sendLink', 'secondary')
    link.type = 'button'
    form.append(link, message)
    const email = () => form.querySelector('#email').value.trim()
    form.addEventListener('submit', async (event) => {
      event.preventDefault()
      const { data, error } = await supabase.auth.signInWithPassword({
        email: email(),
        password: form.querySelector('#password').value,
      })
      if (error) message.textContent = error.message
      else resolve(data.session)
    })
    link.addEventListener('click', async () => {
      const { error } = await supabase.auth.signInWithOtp({
        email: email(),
        options: { emailRedirectTo: location.href },
      })
      message.textContent = error ? error.message : t('linkSent')
    })
    container.replaceChildren(form)
  })
}

function signInForm (fields) {
  const form = document.createElement('form')
  form.className = 'card sign-in'
  form.append(label('h1', 'signInTitle'))
  for (const [id, key, type, autocomplete] of fields) {
    const row = document.createElement('label')
    const input = document.createElement('input')
    Object.assign(input, { id, type, autocomplete, required: true, dir: 'auto' })
    row.append(label('span', key), input)
    form.append(row)
  }
  const submit = label('button', 'signIn')
  submit.type = 'submit'
  form.append(submit)
  return form
}
