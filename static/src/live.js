// The live subscription (`WS /events`): topics, catch-up from the last position seen, and
// reconnects with jittered backoff. Any page can use it:
//   const live = new LiveEvents(session, { onEvent (event) {...}, onReset (topics) {...} })
//   live.subscribe(['student:centre/s-42/iep-2026']); live.start()
import { reconnectDelay } from './connection.js'

export function eventsUrl (session) {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws'
  const query = new URLSearchParams(session.params()).toString()
  return `${scheme}://${location.host}/events${query ? `?${query}` : ''}`
}

export class LiveEvents {
  constructor (session, { onEvent, onReset = () => {}, onState = () => {}, onDenied = () => {}, onSubscribed = () => {} }) {
    this.session = session
    this.handlers = { onEvent, onReset, onState, onDenied, onSubscribed }
    this.topics = new Set()
    this.position = null // the last position seen; null until the server names one
    this.socket = null
    this.attempt = 0
    this.stopped = true
  }

  subscribe (topics) {
    const fresh = topics.filter((topic) => !this.topics.has(topic))
    for (const topic of fresh) this.topics.add(topic)
    if (fresh.length && this.socket?.readyState === WebSocket.OPEN) this.send(fresh)
  }

  start () {
    this.stopped = false
    this.connect()
  }

  stop () {
    this.stopped = true
    this.socket?.close()
  }

  send (topics) {
    const message = { type: 'subscribe', topics }
    if (this.position !== null) message.after = this.position
    this.socket.send(JSON.stringify(message))
  }

  connect () {
    this.handlers.onState('connecting')
    const socket = new WebSocket(eventsUrl(this.session))
    this.socket = socket
    socket.addEventListener('open', () => {
      this.attempt = 0
      this.handlers.onState('connected')
      if (this.topics.size) this.send([...this.topics])
    })
    socket.addEventListener('message', (message) => this.receive(JSON.parse(message.data)))
    socket.addEventListener('close', async (event) => {
      if (this.socket !== socket || this.stopped) return
      this.handlers.onState('reconnecting')
      if (event.code === 4401) await this.session.refresh()
      setTimeout(() => this.connect(), reconnectDelay(this.attempt++))
    })
  }

  receive (message) {
    if (message.type === 'event') {
      if (this.position !== null && message.position <= this.position) return
      this.position = message.position
      this.handlers.onEvent(message)
    } else if (message.type === 'subscribed' || message.type === 'reset') {
      this.position = Math.max(this.position ?? 0, message.position)
      if (message.type === 'reset') this.handlers.onReset(message.topics)
      this.handlers.onSubscribed(message.topics) // live from here: what came before is read
    } else if (message.type === 'denied') {
      this.topics.delete(message.topic)
      this.handlers.onDenied(message.topic)
    }
  }
}
