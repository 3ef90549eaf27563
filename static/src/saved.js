// The save indicator: "Saving…" while this person's edits are not confirmed stored, "All
// changes saved" once the server says its store has them, "Offline — N changes kept on this
// device" while disconnected.
//
// The confirmation is our own message (type 100, docs/decisions.md): the editor asks with an
// id after its updates (frames are handled in order), the server answers with the newest id
// once everything before it is stored. y-websocket clients that never ask never receive one.
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'

export const MESSAGE_SAVED = 100
const ASK_DELAY_MS = 150
const UNSAVED_PREFIX = 'iep-unsaved:'

export const SaveState = Object.freeze({ SAVING: 'saving', SAVED: 'saved', OFFLINE: 'offline' })

export class SaveTracker {
  /**
   * `isLocal(origin)` tells this person's changes from the server's and the device copy's;
   * `onChange({ state, unsaved })` is called whenever either changes.
   */
  constructor (doc, provider, key, { isLocal, onChange }) {
    this.provider = provider
    this.storageKey = UNSAVED_PREFIX + key
    this.onChange = onChange
    // Changes made on this device and not yet confirmed, kept across reloads while offline.
    this.unsaved = Number(localStorage.getItem(this.storageKey)) || 0
    this.made = 0 // changes made since the page opened
    this.asked = new Map() // check id -> `made` when asked
    this.nextId = 1
    this.timer = null
    this.state = null
    provider.messageHandlers[MESSAGE_SAVED] = (_encoder, decoder) => {
      this.confirmed(decoding.readVarUint(decoder))
    }
    doc.on('update', (_update, origin) => {
      if (!isLocal(origin)) return
      this.made += 1
      this.setUnsaved(this.unsaved + 1)
      this.askSoon()
    })
    provider.on('sync', (synced) => {
      if (synced) this.askSoon() // after our own step 2: whatever we held offline
    })
    provider.on('status', ({ status }) => this.show(status === 'connected'))
    this.show(false)
  }

  askSoon () {
    this.show(this.provider.wsconnected)
    if (this.timer !== null) return
    this.timer = setTimeout(() => {
      this.timer = null
      this.ask()
    }, ASK_DELAY_MS)
  }

  ask () {
    // Not connected or not yet synced: the next 'sync' asks (after our own step 2).
    if (!this.provider.wsconnected || !this.provider.synced || !this.provider.ws) return
    const id = this.nextId++
    this.asked.set(id, this.made)
    const encoder = encoding.createEncoder()
    encoding.writeVarUint(encoder, MESSAGE_SAVED)
    encoding.writeVarUint(encoder, id)
    this.provider.ws.send(encoding.toUint8Array(encoder))
  }

  confirmed (id) {
    const made = this.asked.get(id)
    if (made === undefined) return
    for (const asked of this.asked.keys()) if (asked <= id) this.asked.delete(asked)
    // Everything made before the question is stored; what came after is still on its way.
    this.setUnsaved(this.made - made)
    if (this.unsaved > 0 && this.asked.size === 0) this.askSoon()
    this.show(true)
  }

  setUnsaved (count) {
    this.unsaved = Math.max(0, count)
    if (this.unsaved === 0) localStorage.removeItem(this.storageKey)
    else localStorage.setItem(this.storageKey, String(this.unsaved))
  }

  show (connected) {
    if (!connected) this.state = SaveState.OFFLINE
    else this.state = this.unsaved === 0 ? SaveState.SAVED : SaveState.SAVING
    this.onChange({ state: this.state, unsaved: this.unsaved })
  }
}
