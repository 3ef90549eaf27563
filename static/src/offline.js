// The offline app shell (a service worker): the page, its assets and its sign-in settings,
// kept from the last visit, so a previously opened IEP opens from this device when the
// server does not answer. Everything else (the sync socket, the API) always goes to the
// network. Network first: a deploy is picked up on the next load that reaches the server.
const CACHE = 'iep-shell-v1'
const SHELL = ['/assets/app.js', '/assets/app.css', '/api/config']

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(['/', ...SHELL])).then(() => self.skipWaiting()))
})

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) if (name !== CACHE) await caches.delete(name)
    await self.clients.claim()
  })())
})

self.addEventListener('fetch', (event) => {
  const request = event.request
  if (request.method !== 'GET') return
  const url = new URL(request.url)
  if (url.origin !== self.location.origin) return
  const isPage = request.mode === 'navigate' && (url.pathname === '/' || url.pathname.startsWith('/doc/'))
  if (!isPage && !SHELL.includes(url.pathname)) return
  // Every IEP page is the same page: one cached copy serves them all.
  const key = isPage ? '/' : url.pathname
  event.respondWith((async () => {
    const cache = await caches.open(CACHE)
    try {
      const response = await fetch(request)
      if (response.ok) await cache.put(key, response.clone())
      return response
    } catch (error) {
      const kept = await cache.match(key)
      if (kept) return kept
      throw error
    }
  })())
})

// Web Push: a notification while no tab of ours is in view (a visible tab has the bell).
self.addEventListener('push', (event) => {
  let message = {}
  try {
    message = event.data ? event.data.json() : {}
  } catch {
    message = {}
  }
  event.waitUntil((async () => {
    const tabs = await self.clients.matchAll({ type: 'window', includeUncontrolled: true })
    if (tabs.some((tab) => tab.visibilityState === 'visible')) return
    await self.registration.showNotification(message.title || 'IEP', {
      body: message.body || '',
      data: { url: message.url || '/' },
      tag: message.id ? `notification-${message.id}` : undefined,
    })
  })())
})

self.addEventListener('notificationclick', (event) => {
  event.notification.close()
  const url = new URL(event.notification.data?.url || '/', self.location.origin)
  if (url.origin !== self.location.origin) return
  event.waitUntil(self.clients.openWindow(url.href))
})
