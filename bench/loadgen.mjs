// Load generator: raw `ws` sockets speaking the y-websocket protocol (or Hocuspocus' framing of
// it), running one workload against one server and printing one JSON line with the figures.
//
//   node bench/loadgen.mjs '{"workload":"fanout","dialect":"y-websocket",
//                            "base":"ws://127.0.0.1:8000/sync/","pid":1234, ...}'
//
// Server CPU and memory come from /proc/<pid>, read just before and after the measured phase,
// so set-up (connecting readers, pre-filling documents) is never counted.
import { readFileSync, writeFileSync } from 'node:fs'
import { performance } from 'node:perf_hooks'
import WebSocket from 'ws'
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'

const MESSAGE_SYNC = 0
const MESSAGE_AUTH = 2
const MESSAGE_SYNC_REPLY = 4 // Hocuspocus: a sync message that asks for no further step 1
const STEP1 = 0
const STEP2 = 1
const UPDATE = 2
const EMPTY_UPDATE = Y.encodeStateAsUpdate(new Y.Doc())
const EMPTY_STATE_VECTOR = Y.encodeStateVector(new Y.Doc())
// Each written update carries `@BM<writer>.<index>;` in its text, so a receiver can tell which
// writes a frame holds without applying it (a merged update may hold several).
const MARKER = Buffer.from('@BM')
const CLOCK_TICKS_PER_SECOND = 100 // `getconf CLK_TCK` on Linux
const REMOTE = Symbol('remote') // transaction origins of a writer's own Y.Doc
const SETUP = Symbol('setup')

const config = JSON.parse(process.argv[2])
// Sockets the server closed on us: any wait fails at once with the code instead of timing out.
const unexpectedCloses = []
const dialect = config.dialect // "y-websocket" | "hocuspocus"
const deadlineAt = performance.now() + (config.timeoutSeconds ?? 120) * 1000

// -- server process figures ---------------------------------------------------------------

function cpuSecondsOf (pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND // utime + stime
}

// Several server processes (cluster mode): `pids` and `bases`, one per node; CPU is summed.
const nodePids = config.pids ?? [config.pid]
const nodeBases = config.bases ?? [config.base]

function serverCpuSeconds () {
  return nodePids.reduce((total, pid) => total + cpuSecondsOf(pid), 0)
}

function nodeCpuSeconds () {
  return nodePids.map(cpuSecondsOf)
}

function serverMemoryKb () {
  const status = readFileSync(`/proc/${config.pid}/status`, 'utf8')
  const read = (key) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(status)[1])
  return { rss: read('VmRSS'), peak: read('VmHWM') }
}

/** Starts the server's peak RSS (VmHWM) afresh, so a peak belongs to the measured phase. */
function resetServerPeak () {
  try {
    writeFileSync(`/proc/${config.pid}/clear_refs`, '5')
    return true
  } catch { return false } // not our process to reset: the peak then covers set-up as well
}

// -- helpers --------------------------------------------------------------------------------

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

function remainingMs () {
  return Math.max(0, deadlineAt - performance.now())
}

async function waitFor (condition, what, timeoutMs = remainingMs()) {
  const until = performance.now() + timeoutMs
  while (!condition()) {
    if (unexpectedCloses.length) {
      const { name, code, reason } = unexpectedCloses[0]
      throw new Error(`server closed a socket on ${name} while waiting for ${what}: ${code} ${reason}`)
    }
    if (performance.now() > until) throw new Error(`timed out waiting for ${what}`)
    await sleep(2)
  }
}

function percentile (sorted, p) {
  if (sorted.length === 0) return null
  const rank = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)
  return sorted[Math.max(0, rank)]
}

function round (value, digits = 3) {
  return value === null ? null : Number(value.toFixed(digits))
}

/** Calls `onMarker(writer, index)` for every `@BM<writer>.<index>;` in an update. */
function scanMarkers (update, onMarker) {
  const bytes = Buffer.from(update.buffer, update.byteOffset, update.byteLength)
  let at = bytes.indexOf(MARKER)
  while (at !== -1) {
    let pos = at + MARKER.length
    let writer = 0
    let index = 0
    let digits = 0
    while (bytes[pos] >= 48 && bytes[pos] <= 57) writer = writer * 10 + bytes[pos++] - 48
    if (bytes[pos] === 46) { // '.'
      pos++
      while (bytes[pos] >= 48 && bytes[pos] <= 57) { index = index * 10 + bytes[pos++] - 48; digits++ }
      if (digits > 0 && bytes[pos] === 59) onMarker(writer, index) // ';'
    }
    at = bytes.indexOf(MARKER, pos)
  }
}

/** A document of about `targetBytes` built from many small edits, as a typed document is. */
function templateUpdate (targetBytes) {
  const doc = new Y.Doc()
  const text = doc.getText('body')
  const fields = doc.getMap('fields')
  const phrases = ['Goal: reads short passages aloud. ', 'الهدف: يقرأ فقرات قصيرة بصوت عالٍ. ',
    'Progress noted this week. ', 'تم ملاحظة التقدم هذا الأسبوع. ']
  let seed = 7
  let i = 0
  while (Y.encodeStateAsUpdate(doc).length < targetBytes && i < 100000) {
    for (let batch = 0; batch < 10; batch++, i++) {
      seed = (seed * 1103515245 + 12345) % 2147483648
      text.insert(seed % (text.length + 1), phrases[i % phrases.length])
      if (i % 10 === 0) fields.set(`field${i % 200}`, `value ${i}`)
    }
  }
  return Y.encodeStateAsUpdate(doc)
}

// -- a protocol client ----------------------------------------------------------------------

class Client {
  /**
   * @param {string} name document name
   * @param {object} options
   *   state: Uint8Array update sent as our step 2 (the client's whole document)
   *   onUpdate(update, receivedAt): called for each update (and the step 2) the server sends
   */
  constructor (name, { state = EMPTY_UPDATE, onUpdate = null } = {}) {
    this.name = name
    this.state = state
    this.onUpdate = onUpdate
    this.step2Count = 0
    this.syncedAt = null
    this.step2Bytes = 0
    this.closed = false
    this.closing = false
    this.error = null
  }

  frame (write) {
    const encoder = encoding.createEncoder()
    if (dialect === 'hocuspocus') encoding.writeVarString(encoder, this.name)
    write(encoder)
    return encoding.toUint8Array(encoder)
  }

  syncFrame (step, payload) {
    return this.frame((encoder) => {
      encoding.writeVarUint(encoder, MESSAGE_SYNC)
      encoding.writeVarUint(encoder, step)
      encoding.writeVarUint8Array(encoder, payload)
    })
  }

  /** Opens the socket and resolves once the server's sync step 2 has arrived ("synced"). */
  connect () {
    this.startedAt = performance.now()
    return new Promise((resolve, reject) => {
      const ws = new WebSocket((this.base ?? config.base) + this.name, { perMessageDeflate: false })
      ws.binaryType = 'nodebuffer'
      this.ws = ws
      this.resolveSynced = resolve
      ws.on('open', () => {
        if (dialect === 'hocuspocus') {
          ws.send(this.frame((encoder) => {
            encoding.writeVarUint(encoder, MESSAGE_AUTH)
            encoding.writeVarUint(encoder, 0) // token
            encoding.writeVarString(encoder, '')
          }))
        }
        ws.send(this.syncFrame(STEP1, EMPTY_STATE_VECTOR))
      })
      ws.on('message', (data) => this.receive(data))
      ws.on('error', (error) => { this.error = error; reject(error) })
      ws.on('close', (code, reason) => {
        this.closed = true
        if (!this.closing) unexpectedCloses.push({ name: this.name, code, reason: String(reason) })
        if (this.syncedAt === null) reject(new Error(`closed before synced: ${this.name}`))
      })
    })
  }

  receive (data) {
    const receivedAt = performance.now()
    const decoder = decoding.createDecoder(data)
    if (dialect === 'hocuspocus') decoding.readVarString(decoder)
    const type = decoding.readVarUint(decoder)
    if (type !== MESSAGE_SYNC && type !== MESSAGE_SYNC_REPLY) return
    const step = decoding.readVarUint(decoder)
    const payload = decoding.readVarUint8Array(decoder)
    if (step === STEP1) {
      this.ws.send(this.syncFrame(STEP2, this.state))
    } else if (step === STEP2) {
      this.step2Count++
      if (this.syncedAt === null) {
        this.syncedAt = receivedAt
        this.step2Bytes = payload.length
        this.resolveSynced(receivedAt - this.startedAt)
      }
      if (this.onUpdate) this.onUpdate(payload, receivedAt)
    } else if (step === UPDATE && this.onUpdate) {
      this.onUpdate(payload, receivedAt)
    }
  }

  sendUpdate (update) {
    this.ws.send(this.syncFrame(UPDATE, update))
  }

  /** Resolves when everything this client sent before has been processed by the server. */
  async roundtrip () {
    const before = this.step2Count
    this.ws.send(this.syncFrame(STEP1, EMPTY_STATE_VECTOR))
    await waitFor(() => this.step2Count > before, `round trip on ${this.name}`)
  }

  close () {
    this.closing = true
    if (this.ws && !this.closed) this.ws.close()
  }
}

/** A client with its own Y.Doc that appends marked text: real Yjs updates, as an editor sends. */
class Writer extends Client {
  constructor (name, writerId, options) {
    super(name, options)
    this.writerId = writerId
    this.doc = new Y.Doc()
    this.text = this.doc.getText('body')
    // Our own edits go out; what the server sent us, or set-up before connecting, does not.
    this.doc.on('update', (update, origin) => {
      if (origin !== REMOTE && origin !== SETUP) this.sendUpdate(update)
    })
    this.sent = 0
  }

  write () {
    const index = this.sent++
    this.text.insert(this.text.length, `@BM${this.writerId}.${index}; `)
    return index
  }
}

/** An editor of an IEP: types into the `iep` root's notes, as the IEP editor's fields do. */
class IepWriter extends Writer {
  constructor (name, writerId, { creates, ...options }) {
    super(name, writerId, options)
    if (creates) {
      const iep = this.doc.getMap('iep')
      this.doc.transact(() => {
        iep.set('meta', new Y.Map([['title', `Bench IEP ${name}`]]))
        iep.set('student', new Y.Map([['name', 'سارة']]))
        const goal = new Y.Map([['id', 'g1'], ['title', 'Reading fluency']])
        iep.set('goals', Y.Array.from([goal]))
        iep.set('notes', new Y.Text())
      }, SETUP)
      this.state = Y.encodeStateAsUpdate(this.doc)
    }
  }

  receive (data) {
    if (this.syncedAt === null) {
      // The first step 2 carries the IEP another writer created: type into the same notes.
      const decoder = decoding.createDecoder(data)
      if (dialect === 'hocuspocus') decoding.readVarString(decoder)
      const type = decoding.readVarUint(decoder)
      if ((type === MESSAGE_SYNC || type === MESSAGE_SYNC_REPLY) && decoding.readVarUint(decoder) === STEP2) {
        Y.applyUpdate(this.doc, decoding.readVarUint8Array(decoder), REMOTE)
      }
    }
    super.receive(data)
  }

  write () {
    const index = this.sent++
    const notes = this.doc.getMap('iep').get('notes')
    notes.insert(notes.length, `@BM${this.writerId}.${index}; `)
    return index
  }
}

/** Server CPU once it stops rising: work a server defers (digests) counts too. */
async function settledServerCpu (quietMs = 1500, boundMs = 15000) {
  const started = performance.now()
  let last = serverCpuSeconds()
  let quietSince = performance.now()
  while (performance.now() - started < boundMs) {
    await sleep(250)
    const now = serverCpuSeconds()
    if (now - last > 0.005) quietSince = performance.now()
    last = now
    if (performance.now() - quietSince >= quietMs) break
  }
  return last
}

async function connectAll (clients, inFlight = 50) {
  let next = 0
  const times = []
  async function lane () {
    while (next < clients.length) {
      const client = clients[next++]
      times.push(await client.connect())
    }
  }
  await Promise.all(Array.from({ length: Math.min(inFlight, clients.length) }, lane))
  return times
}

function closeAll (clients) {
  for (const client of clients) client.close()
}

// -- workloads ------------------------------------------------------------------------------

/** 1 writer -> N readers on one document at a fixed rate: delivery latency and CPU per delivery. */
async function fanout ({ readers: readerCount, updates, rate }) {
  const name = `fanout-${process.pid}-${Date.now()}`
  const sentAt = new Float64Array(updates)
  const latencies = []
  const seen = Array.from({ length: readerCount }, () => new Uint8Array(updates))
  let delivered = 0
  const readers = Array.from({ length: readerCount }, (_, r) => new Client(name, {
    onUpdate: (update, receivedAt) => scanMarkers(update, (writer, index) => {
      if (writer !== 1 || index >= updates || seen[r][index]) return
      seen[r][index] = 1
      delivered++
      latencies.push(receivedAt - sentAt[index])
    })
  }))
  // Readers spread over the nodes; the first node loads the document (its owner) and the
  // writer sits on the last one (on several nodes: a replica, the longer path).
  readers.forEach((reader, r) => { reader.base = nodeBases[r % nodeBases.length] })
  const writer = new Writer(name, 1)
  writer.base = nodeBases[nodeBases.length - 1]
  await readers[0].connect() // the first node loads the document: its owner
  await connectAll(readers.slice(1))
  await writer.connect()

  const cpuBefore = serverCpuSeconds()
  const perNodeBefore = nodeCpuSeconds()
  const started = performance.now()
  const period = 1000 / rate
  for (let i = 0; i < updates && remainingMs() > 0; i++) {
    const due = started + i * period
    const wait = due - performance.now()
    if (wait > 1) await sleep(wait)
    sentAt[i] = performance.now()
    writer.write()
  }
  const expected = readerCount * updates
  try {
    await waitFor(() => delivered >= expected, 'fan-out deliveries', Math.min(30000, remainingMs()))
  } catch (error) { if (unexpectedCloses.length) throw error } // else: delivered < expected
  const cpu = serverCpuSeconds() - cpuBefore
  const perNode = nodeCpuSeconds().map((after, i) => round(after - perNodeBefore[i]))
  const elapsed = (performance.now() - started) / 1000
  closeAll([writer, ...readers])
  latencies.sort((a, b) => a - b)
  return {
    nodes: nodeBases.length,
    server_cpu_s_per_node: perNode,
    readers: readerCount,
    updates_sent: writer.sent,
    deliveries_expected: expected,
    delivered,
    all_delivered: delivered === expected,
    p50_ms: round(percentile(latencies, 50)),
    p99_ms: round(percentile(latencies, 99)),
    max_ms: round(latencies.length ? latencies[latencies.length - 1] : null),
    elapsed_s: round(elapsed),
    server_cpu_s: round(cpu),
    server_cpu_us_per_delivery: delivered ? round((cpu / delivered) * 1e6, 2) : null
  }
}

/** R rooms x 2 writers, W updates in flight per writer, acknowledged by the room's other client. */
async function throughput ({ rooms, updatesPerWriter, inFlight }) {
  const stamp = `${process.pid}-${Date.now()}`
  const writers = []
  for (let room = 0; room < rooms; room++) {
    const name = `throughput-${stamp}-${room}`
    for (let side = 0; side < 2; side++) {
      const writer = new Writer(name, room * 2 + side)
      // On several nodes: the rooms' first writers spread, each partner on the next node.
      writer.base = nodeBases[(room + side) % nodeBases.length]
      writers.push(writer)
    }
  }
  // acked[w] counts writer w's updates seen by its partner (w ^ 1).
  const acked = new Int32Array(writers.length)
  let totalAcked = 0
  let running = false
  const pump = (writer) => {
    while (running && writer.sent < updatesPerWriter &&
           writer.sent - acked[writer.writerId] < inFlight) writer.write()
  }
  for (const writer of writers) {
    const partner = writer.writerId ^ 1
    writer.onUpdate = (update) => scanMarkers(update, (from, index) => {
      if (from !== partner || index !== acked[partner]) return // in order, once each
      acked[partner]++
      totalAcked++
      pump(writers[partner])
    })
  }
  await connectAll(writers)

  const cpuBefore = serverCpuSeconds()
  const perNodeBefore = nodeCpuSeconds()
  const started = performance.now()
  running = true
  for (const writer of writers) pump(writer)
  const expected = writers.length * updatesPerWriter
  try {
    await waitFor(() => totalAcked >= expected, 'throughput echoes', remainingMs())
  } catch (error) { if (unexpectedCloses.length) throw error } // else: acknowledged < expected
  const elapsed = (performance.now() - started) / 1000
  const cpu = serverCpuSeconds() - cpuBefore
  const perNode = nodeCpuSeconds().map((after, i) => round(after - perNodeBefore[i]))
  closeAll(writers)
  return {
    nodes: nodeBases.length,
    server_cpu_s_per_node: perNode,
    rooms,
    writers: writers.length,
    in_flight: inFlight,
    updates_expected: expected,
    updates_acknowledged: totalAcked,
    elapsed_s: round(elapsed),
    updates_per_s: round(totalAcked / elapsed, 1),
    server_cpu_s: round(cpu),
    server_cpu_us_per_update: totalAcked ? round((cpu / totalAcked) * 1e6, 2) : null
  }
}

/** `throughput` on IEP documents (parents with digests on ours): CPU per update, end to end. */
async function iep ({ rooms, updatesPerWriter, inFlight, stamp }) {
  const writers = []
  for (let room = 0; room < rooms; room++) {
    const name = `iep/bench-${stamp}-${room}`
    for (let side = 0; side < 2; side++) {
      writers.push(new IepWriter(name, room * 2 + side, { creates: side === 0 }))
    }
  }
  const acked = new Int32Array(writers.length)
  let totalAcked = 0
  let running = false
  const pump = (writer) => {
    while (running && writer.sent < updatesPerWriter &&
           writer.sent - acked[writer.writerId] < inFlight) writer.write()
  }
  for (const writer of writers) {
    const partner = writer.writerId ^ 1
    writer.onUpdate = (update) => scanMarkers(update, (from, index) => {
      if (from !== partner || index !== acked[partner]) return
      acked[partner]++
      totalAcked++
      pump(writers[partner])
    })
  }
  // Creators first: their partners join a document that already holds the IEP.
  await connectAll(writers.filter((w) => w.writerId % 2 === 0))
  await connectAll(writers.filter((w) => w.writerId % 2 === 1))
  await sleep(500)

  const cpuBefore = serverCpuSeconds()
  const started = performance.now()
  running = true
  for (const writer of writers) pump(writer)
  const expected = writers.length * updatesPerWriter
  try {
    await waitFor(() => totalAcked >= expected, 'IEP echoes', remainingMs())
  } catch (error) { if (unexpectedCloses.length) throw error }
  const elapsed = (performance.now() - started) / 1000
  const cpu = (await settledServerCpu()) - cpuBefore
  closeAll(writers)
  return {
    rooms,
    writers: writers.length,
    updates_expected: expected,
    updates_acknowledged: totalAcked,
    elapsed_s: round(elapsed),
    updates_per_s: round(totalAcked / elapsed, 1),
    server_cpu_s: round(cpu),
    server_cpu_us_per_update: totalAcked ? round((cpu / totalAcked) * 1e6, 2) : null
  }
}

/** Many joins to pre-filled documents, K in flight: joins/s, time to synced, CPU per join. */
async function connect ({ connections, documents, documentBytes, inFlight }) {
  const stamp = `${process.pid}-${Date.now()}`
  const state = templateUpdate(documentBytes)
  // One holder per document keeps it loaded: the peers drop an unwatched in-memory document.
  const holders = Array.from({ length: documents }, (_, d) => new Client(`connect-${stamp}-${d}`, { state }))
  await connectAll(holders)
  await Promise.all(holders.map((holder) => holder.roundtrip()))

  const joiners = Array.from({ length: connections },
    (_, i) => new Client(`connect-${stamp}-${i % documents}`))
  const cpuBefore = serverCpuSeconds()
  const started = performance.now()
  const times = await connectAll(joiners, inFlight)
  const elapsed = (performance.now() - started) / 1000
  const cpu = serverCpuSeconds() - cpuBefore
  const fullyLoaded = joiners.filter((j) => j.step2Bytes >= state.length * 0.9).length
  closeAll([...holders, ...joiners])
  times.sort((a, b) => a - b)
  return {
    connections,
    documents,
    document_bytes: state.length,
    synced: times.length,
    synced_with_full_document: fullyLoaded,
    elapsed_s: round(elapsed),
    connections_per_s: round(times.length / elapsed, 1),
    p50_ms: round(percentile(times, 50)),
    p99_ms: round(percentile(times, 99)),
    server_cpu_s: round(cpu),
    server_cpu_ms_per_connection: times.length ? round((cpu / times.length) * 1e3, 3) : null
  }
}

/** N small documents, each held by one idle connection: server RSS growth per document. */
async function memory ({ documents, documentBytes }) {
  const stamp = `${process.pid}-${Date.now()}`
  const state = templateUpdate(documentBytes)
  const before = serverMemoryKb()
  const holders = Array.from({ length: documents }, (_, d) => new Client(`memory-${stamp}-${d}`, { state }))
  await connectAll(holders)
  await Promise.all(holders.map((holder) => holder.roundtrip()))
  await sleep(500) // let the server finish the work it queued behind the round trips
  const after = serverMemoryKb()
  closeAll(holders)
  return {
    documents,
    document_bytes: state.length,
    rss_before_mb: round(before.rss / 1024, 1),
    rss_after_mb: round(after.rss / 1024, 1),
    rss_kb_per_document: round((after.rss - before.rss) / documents, 1)
  }
}

/**
 * C idle sockets over D documents (one holder per document brings ~documentBytes, the others
 * join empty): server RSS growth per socket, documents included, after the sockets settle.
 */
async function idle ({ connections, documents, documentBytes, inFlight, settleMs = 3000 }) {
  const stamp = `${process.pid}-${Date.now()}`
  const state = templateUpdate(documentBytes)
  const before = serverMemoryKb()
  const clients = Array.from({ length: connections }, (_, i) =>
    new Client(`idle-${stamp}-${i % documents}`, { state: i < documents ? state : EMPTY_UPDATE }))
  const holders = clients.slice(0, documents)
  await connectAll(holders, inFlight)
  await Promise.all(holders.map((holder) => holder.roundtrip()))
  await sleep(500)
  const withDocuments = serverMemoryKb()
  const started = performance.now()
  await connectAll(clients.slice(documents), inFlight)
  const elapsed = (performance.now() - started) / 1000
  await sleep(settleMs) // idle: pings and timers run, the server frees what it let go of
  const after = serverMemoryKb()
  const open = clients.filter((client) => !client.closed).length
  closeAll(clients)
  const extra = connections - documents
  return {
    connections,
    documents,
    document_bytes: state.length,
    open_at_end: open,
    connect_elapsed_s: round(elapsed),
    rss_before_mb: round(before.rss / 1024, 1),
    rss_with_documents_mb: round(withDocuments.rss / 1024, 1),
    rss_after_mb: round(after.rss / 1024, 1),
    rss_kb_per_connection: round((after.rss - before.rss) / connections, 2),
    rss_kb_per_extra_socket: extra > 0 ? round((after.rss - withDocuments.rss) / extra, 2) : null
  }
}

/** A document of about `targetBytes` as update chunks of about `chunkBytes` each, every one a
 * plain update: long paragraphs inserted at random places, with fields set beside them. */
function bulkDocumentChunks (targetBytes, chunkBytes) {
  const doc = new Y.Doc()
  const text = doc.getText('body')
  const fields = doc.getMap('fields')
  const phrases = ['Goal: reads short passages aloud with fewer than two errors. ',
    'الهدف: يقرأ فقرات قصيرة بصوت عالٍ بأقل من خطأين. ',
    'Progress noted this week in class and at home. ', 'تم ملاحظة التقدم هذا الأسبوع. ']
  const chunks = []
  let pending = []
  let pendingBytes = 0
  let total = 0
  doc.on('update', (update) => {
    pending.push(update)
    pendingBytes += update.length
    total += update.length
    if (pendingBytes >= chunkBytes) {
      chunks.push(Y.mergeUpdates(pending))
      pending = []
      pendingBytes = 0
    }
  })
  let seed = 11
  for (let i = 0; total < targetBytes && i < 1_000_000; i++) {
    seed = (seed * 1103515245 + 12345) % 2147483648
    const paragraph = phrases[i % phrases.length].repeat(8 + (seed % 24))
    text.insert(seed % (text.length + 1), paragraph)
    if (i % 4 === 0) fields.set(`field${i % 500}`, `value ${i}`)
  }
  if (pending.length) chunks.push(Y.mergeUpdates(pending))
  return { chunks, bytes: Y.encodeStateAsUpdate(doc).length }
}

/**
 * J clients open one large document at the same moment: each one's time from opening the
 * socket to the server's step 2, the server's CPU and its peak RSS during the storm.
 */
async function storm ({ joiners, documentBytes, chunkBytes = 1_000_000 }) {
  const name = `storm-${process.pid}-${Date.now()}`
  const { chunks, bytes } = bulkDocumentChunks(documentBytes, chunkBytes)
  // The holder writes the document in chunks (every server's message limit allows 1 MB) and
  // keeps it loaded.
  const holder = new Client(name)
  await holder.connect()
  for (const chunk of chunks) {
    holder.sendUpdate(chunk)
    await holder.roundtrip()
  }
  await sleep(1000) // let the server settle (stores, frees) before the storm
  const before = serverMemoryKb()
  const peakReset = resetServerPeak()
  const cpuBefore = serverCpuSeconds()
  const clients = Array.from({ length: joiners }, () => new Client(name))
  const started = performance.now()
  const times = await Promise.all(clients.map((client) => client.connect()))
  const elapsed = (performance.now() - started) / 1000
  const cpu = serverCpuSeconds() - cpuBefore
  const after = serverMemoryKb()
  const whole = clients.filter((client) => client.step2Bytes >= bytes * 0.99).length
  closeAll([holder, ...clients])
  times.sort((a, b) => a - b)
  return {
    joiners,
    document_bytes: bytes,
    synced: times.length,
    synced_with_full_document: whole,
    p50_ms: round(percentile(times, 50)),
    p99_ms: round(percentile(times, 99)),
    elapsed_s: round(elapsed),
    server_cpu_s: round(cpu),
    rss_before_mb: round(before.rss / 1024, 1),
    rss_peak_mb: round(after.peak / 1024, 1),
    peak_covers_storm_only: peakReset
  }
}

/** Writes N updates to one document, confirmed by a reader that received them all. */
async function prewrite ({ name, updates, inFlight }) {
  let received = 0
  const reader = new Client(name, {
    onUpdate: (update) => scanMarkers(update, (writer) => { if (writer === 1) received++ })
  })
  const writer = new Writer(name, 1)
  await reader.connect()
  await writer.connect()
  const started = performance.now()
  while (writer.sent < updates) {
    await waitFor(() => writer.sent - received < inFlight, 'room in the pre-write window')
    while (writer.sent < updates && writer.sent - received < inFlight) writer.write()
  }
  await waitFor(() => received >= updates, 'pre-written updates')
  const elapsed = (performance.now() - started) / 1000
  closeAll([reader, writer])
  return { name, updates: writer.sent, received, elapsed_s: round(elapsed) }
}

/** One fresh client joins one document: connect-to-synced time (cold load after a restart). */
async function coldsync ({ name }) {
  const client = new Client(name)
  const ms = await client.connect()
  client.close()
  return { name, synced_ms: round(ms), step2_bytes: client.step2Bytes }
}

/**
 * Cluster mode: `clients` on one document over three nodes (the first node owns it); SIGKILL
 * of the owner; each client it dropped reconnects to a survivor, as a load balancer would
 * send it. A survivor's writer types every 20 ms from the kill on: figures are the times from
 * the kill until each client holds a change typed after it (synced again, edits flowing).
 */
async function failover ({ clients: count, killPid }) {
  const name = `failover-${process.pid}-${Date.now()}`
  const survivors = nodeBases.slice(1)
  let killedAt = null
  const firstAfterKill = new Array(count).fill(null)
  let writer = null
  const clients = Array.from({ length: count }, (_, c) => new Client(name, {
    onUpdate: (update, receivedAt) => scanMarkers(update, (from, index) => {
      if (from !== 9 || killedAt === null || firstAfterKill[c] !== null) return
      if (index >= writer.firstAfterKill) firstAfterKill[c] = receivedAt - killedAt
    })
  }))
  clients.forEach((client, c) => { client.base = nodeBases[c % nodeBases.length] })
  await clients[0].connect() // the first node loads the document: its owner
  await connectAll(clients.slice(1))
  writer = new Writer(name, 9)
  writer.base = survivors[0]
  await writer.connect()
  writer.firstAfterKill = Infinity
  for (const client of clients) {
    if (client.base !== nodeBases[0]) continue
    client.closing = true // its close is expected: it moves to a survivor
  }
  killedAt = performance.now()
  process.kill(killPid, 'SIGKILL')
  writer.firstAfterKill = writer.sent
  const typing = setInterval(() => writer.write(), 20)
  const moved = clients.filter((client) => client.base === nodeBases[0])
  await Promise.all(moved.map(async (client, m) => {
    await waitFor(() => client.closed, 'the killed node to drop its sockets', 10000)
    client.closed = false
    client.closing = false
    client.syncedAt = null
    client.base = survivors[m % survivors.length]
    for (;;) {
      try {
        await client.connect()
        return
      } catch {
        client.closed = false
        await sleep(50)
      }
    }
  }))
  await waitFor(() => firstAfterKill.every((t) => t !== null), 'every client synced again', 60000)
  clearInterval(typing)
  closeAll([writer, ...clients])
  const times = [...firstAfterKill].sort((a, b) => a - b)
  return {
    clients: count,
    moved: moved.length,
    p50_ms: round(percentile(times, 50)),
    p99_ms: round(percentile(times, 99)),
    max_ms: round(times[times.length - 1])
  }
}

const WORKLOADS = {
  failover, fanout, throughput, iep, connect, memory, idle, storm, prewrite, coldsync
}

try {
  const result = await WORKLOADS[config.workload](config.params ?? {})
  // The load generator shares the cores with the server: its own CPU shows when it was the limit.
  const { user, system } = process.cpuUsage()
  const loadgenCpu = round((user + system) / 1e6)
  process.stdout.write(JSON.stringify({ workload: config.workload, ...result, loadgen_cpu_s: loadgenCpu }) + '\n')
  process.exit(0)
} catch (error) {
  process.stdout.write(JSON.stringify({ workload: config.workload, error: String(error) }) + '\n')
  process.exit(1)
}
