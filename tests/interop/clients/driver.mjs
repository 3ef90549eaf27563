// Real yjs / y-websocket clients, driven by JSON lines on stdin; replies and events go to stdout.
//
// Every command carries `req`; its answer is `{"reply": req, ...}`. Events (connection status,
// sync, close codes) are `{"event": ..., "id": ...}` lines sent as they happen.
//
// Each peer uses one fixed schema so the tests can read it back: Y.Text "notes",
// Y.Map "meta", Y.Array "items"; and the IEP's schema 2 (docs/iep-schema.md) through the
// `addItem`, `typeIn` and `legacy` ops. BroadcastChannel is off: peers in one process must only
// ever meet through the server under test.
import { createHash } from 'node:crypto'
import { createInterface } from 'node:readline'

import WebSocket from 'ws'
import { WebsocketProvider } from 'y-websocket'
import * as Y from 'yjs'

// The editor's restore (static/src/restore.js), given this process's own Yjs.
import { restoreState } from '../../../static/src/restore.js'

const INLINE_TEXT_LIMIT = 100_000

/** @type {Map<string, Peer>} */
const peers = new Map()

const emit = (message) => process.stdout.write(JSON.stringify(message) + '\n')

class Peer {
  constructor (id, { url, room, params = {}, awareness = null }) {
    this.id = id
    this.doc = new Y.Doc()
    this.notes = this.doc.getText('notes')
    this.meta = this.doc.getMap('meta')
    this.items = this.doc.getArray('items')
    this.statuses = []
    this.closes = []
    this.waiters = new Set()
    this.provider = new WebsocketProvider(url, room, this.doc, {
      WebSocketPolyfill: WebSocket,
      params,
      disableBc: true,
      connect: false // connected below, once every status is being recorded
    })
    if (awareness !== null) this.provider.awareness.setLocalState(awareness)
    this.provider.on('status', ({ status }) => {
      this.statuses.push(status)
      emit({ event: 'status', id, status })
      this.check()
    })
    this.provider.on('sync', (synced) => {
      if (synced) emit({ event: 'synced', id })
      this.check()
    })
    this.provider.on('connection-close', (event) => {
      // `event` is null when this side closed the socket itself.
      const close = event === null ? null : { code: event.code, reason: String(event.reason) }
      this.closes.push(close)
      emit({ event: 'close', id, ...(close ?? { code: null }) })
    })
    this.doc.on('afterTransaction', () => this.check())
    this.provider.awareness.on('change', () => this.check())
    this.provider.connect()
  }

  state () {
    const notes = this.notes.toString()
    const awareness = {}
    for (const [clientId, value] of this.provider.awareness.getStates()) {
      awareness[clientId] = value
    }
    return {
      clientId: this.doc.clientID,
      notesLength: notes.length,
      notesSha256: createHash('sha256').update(notes).digest('hex'),
      notes: notes.length <= INLINE_TEXT_LIMIT ? notes : null,
      meta: this.meta.toJSON(),
      items: this.items.toJSON(),
      iep: {
        studentName: this.doc.getText('student/name').toString(),
        goals: this.doc.getArray('goals').toJSON(),
        goalTexts: this.doc.getArray('goals').toArray().map((goal) => goal.get('title') instanceof Y.Text),
        notes: this.doc.getText('notes').toString(),
        legacy: this.doc.getMap('iep').toJSON(),
      },
      awareness,
      synced: this.provider.synced,
      connected: this.provider.wsconnected,
      statuses: this.statuses,
      closes: this.closes
    }
  }

  holds (cond) {
    const p = this.provider
    if (cond.synced !== undefined && p.synced !== cond.synced) return false
    if (cond.connected !== undefined && p.wsconnected !== cond.connected) return false
    if (cond.notes !== undefined && this.notes.toString() !== cond.notes) return false
    if (cond.notesLength !== undefined && this.notes.length !== cond.notesLength) return false
    if (cond.itemsLength !== undefined && this.items.length !== cond.itemsLength) return false
    if (cond.metaSize !== undefined && this.meta.size !== cond.metaSize) return false
    if (cond.goalsLength !== undefined && this.doc.getArray('goals').length !== cond.goalsLength) return false
    if (cond.studentName !== undefined && this.doc.getText('student/name').toString() !== cond.studentName) return false
    const states = p.awareness.getStates()
    for (const clientId of cond.awarenessHas ?? []) {
      if (!states.has(clientId)) return false
    }
    for (const clientId of cond.awarenessLacks ?? []) {
      if (states.has(clientId)) return false
    }
    return true
  }

  waitFor (cond, timeoutMs) {
    if (this.holds(cond)) return Promise.resolve(true)
    return new Promise((resolve) => {
      const waiter = { cond, resolve }
      waiter.timer = setTimeout(() => {
        this.waiters.delete(waiter)
        resolve(false)
      }, timeoutMs)
      this.waiters.add(waiter)
    })
  }

  check () {
    for (const waiter of this.waiters) {
      if (this.holds(waiter.cond)) {
        clearTimeout(waiter.timer)
        this.waiters.delete(waiter)
        waiter.resolve(true)
      }
    }
  }

  edit (ops) {
    for (const op of ops) {
      switch (op.op) {
        case 'insert':
          // `times` builds large texts here rather than piping megabytes through stdin.
          this.notes.insert(op.index ?? this.notes.length, op.text.repeat(op.times ?? 1))
          break
        case 'delete':
          this.notes.delete(op.index, op.length)
          break
        case 'set':
          this.meta.set(op.key, op.value)
          break
        case 'push':
          this.items.push(op.values)
          break
        case 'addItem': {
          // Created whole, as the editor does: id and every free-text field in one go.
          const item = new Y.Map()
          this.doc.getArray(op.section).push([item])
          item.set('id', op.id)
          for (const [field, value] of Object.entries(op.texts)) item.set(field, new Y.Text(value))
          break
        }
        case 'typeIn': {
          // Into a root text (`student/name`) or an item's field (`goals`, id, field).
          const text = op.item === undefined
            ? this.doc.getText(op.root)
            : this.doc.getArray(op.root).toArray().find((i) => i.get('id') === op.item).get(op.field)
          text.insert(op.index ?? text.length, op.text)
          break
        }
        case 'legacy': {
          // What the schema-1 editor wrote: every section under the root map `iep`.
          const iep = this.doc.getMap('iep')
          iep.set('student', new Y.Map(Object.entries(op.student)))
          iep.set('goals', Y.Array.from(op.goals.map((goal) => new Y.Map(Object.entries(goal)))))
          const notes = new Y.Text()
          iep.set('notes', notes)
          notes.insert(0, op.notes)
          break
        }
        default:
          throw new Error(`unknown edit op ${op.op}`)
      }
    }
  }
}

const peer = (id) => {
  const found = peers.get(id)
  if (found === undefined) throw new Error(`no peer ${id}`)
  return found
}

const SOCKET_CLOSE_TIMEOUT_MS = 5000

// Like closing a browser tab: frames already sent (the last edit, the awareness goodbye) are
// flushed and the closing handshake completes before the peer counts as gone. Exiting the
// process without this would drop frames still in `ws`'s send queue.
const closePeer = async (id) => {
  const { provider, doc } = peer(id)
  peers.delete(id)
  const socket = provider.ws
  provider.destroy()
  provider.awareness.destroy()
  doc.destroy()
  if (socket === null || socket.readyState === WebSocket.CLOSED) return
  await new Promise((resolve) => {
    const timer = setTimeout(resolve, SOCKET_CLOSE_TIMEOUT_MS)
    socket.once('close', () => {
      clearTimeout(timer)
      resolve()
    })
  })
}

// A bare `ws` socket that sends the given frames as they are, to probe malformed input.
const raw = ({ url, frames, close = false, timeoutMs = 5000 }) => new Promise((resolve) => {
  const socket = new WebSocket(url)
  const result = { opened: false, httpStatus: null, code: null, reason: null, received: 0 }
  const timer = setTimeout(() => {
    socket.terminate()
    resolve({ ...result, timedOut: true })
  }, timeoutMs)
  const finish = () => {
    clearTimeout(timer)
    resolve(result)
  }
  socket.on('unexpected-response', (_request, response) => {
    result.httpStatus = response.statusCode
    socket.terminate()
    finish()
  })
  socket.on('error', () => {})
  socket.on('message', () => { result.received++ })
  socket.on('open', () => {
    result.opened = true
    for (const frame of frames) {
      if (frame.text !== undefined) socket.send(frame.text)
      else if (frame.repeat !== undefined) socket.send(Buffer.alloc(frame.repeat, frame.byte ?? 0))
      else socket.send(Buffer.from(frame.hex, 'hex'))
    }
    if (close) socket.close(1000)
  })
  socket.on('close', (code, reason) => {
    result.code = code
    result.reason = reason.toString()
    finish()
  })
})

const handlers = {
  open ({ ids, ...options }) {
    // Opened in one tick, so a list of ids joins the server at the same moment.
    for (const id of ids) peers.set(id, new Peer(id, options))
    return {}
  },
  edit ({ id, ops, transact = false }) {
    const target = peer(id)
    if (transact) target.doc.transact(() => target.edit(ops))
    else target.edit(ops)
    return {}
  },
  async waitFor ({ ids, cond, timeoutMs = 10000 }) {
    const results = await Promise.all(ids.map((id) => peer(id).waitFor(cond, timeoutMs)))
    const failed = ids.filter((_id, i) => !results[i])
    return { ok: failed.length === 0, failed }
  },
  state ({ ids }) {
    return { states: Object.fromEntries(ids.map((id) => [id, peer(id).state()])) }
  },
  setAwareness ({ id, state }) {
    peer(id).provider.awareness.setLocalState(state)
    return {}
  },
  disconnect ({ id }) {
    peer(id).provider.disconnect()
    return {}
  },
  connect ({ id }) {
    peer(id).provider.connect()
    return {}
  },
  async destroy ({ ids }) {
    await Promise.all(ids.map(closePeer))
    return {}
  },
  raw,
  // Restore a version's state as this peer's own change, undoable by its UndoManager.
  restore ({ id, state, path = '' }) {
    const target = peer(id)
    if (!target.undoManager) {
      target.restoreOrigin = { restoredBy: id }
      target.undoManager = new Y.UndoManager([target.notes, target.meta, target.items], {
        trackedOrigins: new Set([target.restoreOrigin])
      })
    }
    const changed = restoreState(Y, target.doc, Buffer.from(state, 'base64'), {
      origin: target.restoreOrigin,
      path
    })
    return { changed }
  },
  undo ({ id }) {
    const target = peer(id)
    target.undoManager.undo()
    return {}
  }
}

const lines = createInterface({ input: process.stdin })
lines.on('line', async (line) => {
  if (!line.trim()) return
  const { cmd, req, ...args } = JSON.parse(line)
  try {
    const handler = handlers[cmd]
    if (handler === undefined) throw new Error(`unknown command ${cmd}`)
    emit({ reply: req, ...(await handler(args)) })
  } catch (error) {
    emit({ reply: req, error: String(error?.stack ?? error) })
  }
})
// stdin closed: the test is done with these peers.
lines.on('close', async () => {
  await Promise.all([...peers.keys()].map(closePeer))
  process.exit(0)
})
