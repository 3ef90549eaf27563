// The WebSocket link to the server: y-websocket with jittered backoff, visible state,
// offline handling and the server's permission-denied answer.
import { WebsocketProvider } from 'y-websocket'
import * as decoding from 'lib0/decoding'

const MESSAGE_AUTH = 2
const PERMISSION_DENIED = 0
const UNAUTHORIZED = 4401
const BASE_DELAY_MS = 250
const MAX_DELAY_MS = 15000

export const ConnectionState = Object.freeze({
  CONNECTING: 'connecting',
  CONNECTED: 'connected',
  RECONNECTING: 'reconnecting',
  OFFLINE: 'offline',
  REFUSED: 'refused',
})

/** "Full jitter" backoff: a random delay up to the exponential cap, so clients spread out. */
export function reconnectDelay (attempt, random = Math.random) {
  const cap = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** attempt)
  return Math.round(cap / 2 + random() * (cap / 2))
}

export function syncServerUrl () {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws'
  return `${scheme}://${location.host}/sync`
}

/**
 * Connects `doc` to room `name`. Callbacks: onState(state), onPermissionDenied(reason).
 * y-websocket's own retry is suppressed (it has no jitter); this class schedules reconnects.
 */
export class Connection {
  constructor (doc, name, session, { onState, onPermissionDenied, onRefused = () => {} }) {
    this.session = session
    this.onState = onState
    this.onRefused = onRefused
    this.attempt = 0
    this.timer = null
    this.everConnected = false
    this.state = null
    this.provider = new WebsocketProvider(syncServerUrl(), name, doc, {
      connect: false,
      params: session.params(),
      // A viewer's tab must not hand updates to an editor's tab behind the server's back.
      disableBc: true,
    })
    this.provider.messageHandlers[MESSAGE_AUTH] = (_encoder, decoder) => {
      if (decoding.readVarUint(decoder) === PERMISSION_DENIED) {
        onPermissionDenied(decoding.readVarString(decoder))
      }
    }
    this.provider.on('status', ({ status }) => {
      if (status === 'connected') {
        this.everConnected = true
      } else if (status === 'connecting') {
        this.setState(this.everConnected ? ConnectionState.RECONNECTING : ConnectionState.CONNECTING)
      }
    })
    this.provider.on('sync', (synced) => {
      if (synced) {
        this.attempt = 0
        this.setState(ConnectionState.CONNECTED)
      }
    })
    this.provider.on('connection-close', (event) => this.closed(event))
    window.addEventListener('offline', () => this.goOffline())
    window.addEventListener('online', () => this.connectNow())
  }

  get awareness () {
    return this.provider.awareness
  }

  setState (state) {
    if (state === this.state) return
    this.state = state
    this.onState(state)
  }

  start () {
    if (navigator.onLine === false) this.goOffline()
    else this.connectNow()
  }

  connectNow () {
    clearTimeout(this.timer)
    this.timer = null
    this.provider.params = this.session.params()
    this.provider.connect()
  }

  goOffline () {
    clearTimeout(this.timer)
    this.timer = null
    this.provider.disconnect()
    this.setState(ConnectionState.OFFLINE)
  }

  closed (event) {
    if (!this.provider.shouldConnect) return // we closed it on purpose
    if (event && event.code >= 4400 && event.code < 4500 && event.code !== UNAUTHORIZED) {
      this.provider.shouldConnect = false
      this.setState(ConnectionState.REFUSED)
      this.onRefused()
      return
    }
    // A refusal before the socket opened reaches the browser as 1006 with no reason: the
    // page asks the API why (and keeps retrying meanwhile, in case the server was just down).
    if (!this.everConnected && event && event.code === 1006) this.onRefused()
    // Stop y-websocket's fixed-schedule retry; ours adds jitter.
    this.provider.shouldConnect = false
    this.setState(navigator.onLine === false ? ConnectionState.OFFLINE : ConnectionState.RECONNECTING)
    if (navigator.onLine === false) return
    const delay = reconnectDelay(this.attempt++)
    const refresh = event && event.code === UNAUTHORIZED ? this.session.refresh() : Promise.resolve()
    this.timer = setTimeout(() => {
      refresh.finally(() => {
        if (this.timer !== null) this.connectNow()
      })
    }, delay)
  }

  destroy () {
    clearTimeout(this.timer)
    this.provider.destroy()
  }
}
