// Voice calls: the ring, the call bar, and one RTCPeerConnection per other person (a mesh is
// enough for six). Offers, answers and candidates travel over our `WS /calls`; the audio goes
// browser to browser. Of each pair, the peer with the smaller id makes the first offer and the
// other adds its microphone to the answer: two first offers crossing left Chromium's ICE idle
// now and then. Later offers (an ICE restart after a network change) may come from either
// side; the negotiation is "perfect" (the answering side yields on a collision).
import { addStrings, label, language, onLanguageChange, t } from './i18n.js'
import { apiFetch } from './session.js'

addStrings({
  en: {
    callButton: 'Call',
    callWho: 'Who do you want to call?',
    callFamily: 'family',
    callHere: 'on this IEP now',
    callNobody: 'Nobody else can be called for this student yet.',
    callRing: 'Call',
    callCancel: 'Cancel',
    callRinging: '{name} is calling about {student}',
    callRingingBusy: '{name} is calling about {student}. Answering leaves your current call.',
    callAccept: 'Answer',
    callDecline: 'Decline',
    callDeclined: '{name} declined the call.',
    callIn: 'In the call',
    callMute: 'Mute',
    callUnmute: 'Unmute',
    callHangUp: 'Hang up',
    callMuted: 'muted',
    callSpeaking: 'speaking',
    callWaiting: 'Waiting for the others to answer…',
    callReconnecting: 'Reconnecting…',
    callFull: 'This call already has six people.',
    callFailed: 'The call could not start; try again.',
    callTooMany: 'You started many calls in the last minutes. Wait a little, then call again.',
    callMicBlocked: 'The microphone is blocked for this site. Allow it in the browser (the icon in the address bar), then press Call again.',
    callNoMic: 'No microphone was found. Connect one, then press Call again.',
    callJoin: 'Join the call',
    callRejoin: 'Join the call again',
  },
  ar: {
    callButton: 'اتصال',
    callWho: 'بمن تريد الاتصال؟',
    callFamily: 'الأسرة',
    callHere: 'في هذه الخطة الآن',
    callNobody: 'لا يوجد بعد من يمكن الاتصال به لهذا الطالب.',
    callRing: 'اتصل',
    callCancel: 'إلغاء',
    callRinging: '{name} يتصل بخصوص {student}',
    callRingingBusy: '{name} يتصل بخصوص {student}. الرد ينهي مكالمتك الحالية.',
    callAccept: 'رد',
    callDecline: 'رفض',
    callDeclined: 'رفض {name} المكالمة.',
    callIn: 'في المكالمة',
    callMute: 'كتم الصوت',
    callUnmute: 'إلغاء الكتم',
    callHangUp: 'إنهاء',
    callMuted: 'مكتوم',
    callSpeaking: 'يتحدث',
    callWaiting: 'بانتظار رد الآخرين…',
    callReconnecting: 'جارٍ إعادة الاتصال…',
    callFull: 'في هذه المكالمة ستة أشخاص بالفعل.',
    callFailed: 'تعذر بدء المكالمة؛ حاول مرة أخرى.',
    callTooMany: 'بدأت مكالمات كثيرة في الدقائق الأخيرة. انتظر قليلاً ثم اتصل مرة أخرى.',
    callMicBlocked: 'الميكروفون محجوب لهذا الموقع. اسمح به من المتصفح (الرمز في شريط العنوان)، ثم اضغط «اتصال» مرة أخرى.',
    callNoMic: 'لم يُعثر على ميكروفون. صِله ثم اضغط «اتصال» مرة أخرى.',
    callJoin: 'انضم إلى المكالمة',
    callRejoin: 'عُد إلى المكالمة',
  },
})

const PING_MS = 1500 // the server drops a tab silent for 5 s
const LEVEL_MS = 300
const SPEAKING_LEVEL = 0.02
const RESTART_AFTER_MS = 2000 // "disconnected" this long: restart ICE
const CALL_FULL = 4409
const REJOIN_MS = 10 * 60 * 1000
const pathOf = (name) => name.split('/').map(encodeURIComponent).join('/')

export function installCalls (session) {
  const who = new URLSearchParams(session.apiParams?.() ?? {}).toString()
  const api = (path, options) => apiFetch(session, who ? `${path}${path.includes('?') ? '&' : '?'}${who}` : path, options)
  const dock = document.createElement('div')
  dock.className = 'calls-dock'
  dock.setAttribute('aria-live', 'polite')
  document.body.append(dock)
  const rings = new Map() // call id -> its banner
  let current = null

  function notice (key, values = {}, ms = 8000) {
    const note = document.createElement('p')
    note.className = 'card call-notice'
    note.setAttribute('role', 'alert')
    note.textContent = t(key, values)
    dock.append(note)
    setTimeout(() => note.remove(), ms)
  }

  function showRing (ring) {
    if (rings.has(ring.call) || current?.callId === ring.call) return
    const banner = document.createElement('div')
    banner.className = 'card call-ring'
    banner.setAttribute('role', 'alertdialog')
    const text = document.createElement('p')
    const answer = label('button', 'callAccept', 'call-accept')
    const decline = label('button', 'callDecline', 'secondary call-decline')
    answer.type = decline.type = 'button'
    const render = () => {
      text.textContent = t(current ? 'callRingingBusy' : 'callRinging', { name: ring.from, student: ring.student })
    }
    render()
    banner.append(text, answer, decline)
    dock.append(banner)
    rings.set(ring.call, { banner, render })
    answer.addEventListener('click', async () => {
      stopRing(ring.call)
      current?.hangUp() // offered, never forced: only an answer leaves the call in progress
      await join(ring.student_id, ring.call)
    })
    decline.addEventListener('click', async () => {
      stopRing(ring.call)
      await api(`/api/students/${pathOf(ring.student_id)}/calls/${ring.call}/decline`, { method: 'POST' })
    })
  }

  function stopRing (callId) {
    rings.get(callId)?.banner.remove()
    rings.delete(callId)
  }

  /** What arrives on the person's own topic: rings, answers from their other tabs, declines. */
  function heard (event) {
    if (event.kind === 'call.ring') showRing(event.data)
    else if (event.kind === 'call.answered') stopRing(event.data.call)
    else if (event.kind === 'call.declined' && current?.callId === event.data.call) notice('callDeclined', { name: event.data.name })
  }

  /** `here(userId)`: whether that person has this IEP open now (its presence says so). */
  /** Rings still sounding when this page began listening (opened from a push, say). */
  async function catchUp () {
    const response = await api('/api/calls/ringing')
    if (!response.ok) return
    for (const ring of (await response.json()).rings) showRing(ring)
  }

  async function choose (student, here = () => false) {
    const response = await api(`/api/students/${pathOf(student)}/calls/people`)
    if (!response.ok) return notice('callFailed')
    const { people } = await response.json()
    const dialog = document.createElement('dialog')
    dialog.className = 'card call-dialog'
    const form = document.createElement('form')
    form.method = 'dialog'
    form.append(label('h2', 'callWho'))
    for (const person of people) {
      const row = document.createElement('label')
      row.className = 'call-person'
      const box = document.createElement('input')
      box.type = 'checkbox'
      box.value = person.user_id
      const name = document.createElement('bdi')
      name.textContent = person.name
      row.append(box, name)
      if (person.family) row.append(' ', label('span', 'callFamily', 'hint'))
      if (here(person.user_id)) row.append(' ', label('span', 'callHere', 'call-here'))
      form.append(row)
    }
    if (!people.length) form.append(label('p', 'callNobody', 'hint'))
    const ring = label('button', 'callRing', 'call-start')
    const cancel = label('button', 'callCancel', 'secondary')
    ring.type = 'submit'
    cancel.type = 'button'
    ring.disabled = !people.length
    form.append(ring, cancel)
    dialog.append(form)
    document.body.append(dialog)
    cancel.addEventListener('click', () => dialog.close())
    dialog.addEventListener('close', () => dialog.remove())
    form.addEventListener('submit', async (event) => {
      event.preventDefault()
      const invite = [...form.querySelectorAll('input:checked')].map((box) => box.value)
      if (!invite.length) return
      dialog.close()
      current?.hangUp() // a new call chosen while in one: that one ends for this page
      // The microphone first: nobody is rung for a call that cannot start.
      const stream = await microphone()
      if (!stream) return
      const started = await api(`/api/students/${pathOf(student)}/calls`, { method: 'POST', body: JSON.stringify({ invite }) })
      if (!started.ok) {
        for (const track of stream.getTracks()) track.stop()
        return notice(started.status === 429 ? 'callTooMany' : 'callFailed')
      }
      await join(student, (await started.json()).call, stream)
    })
    dialog.showModal()
  }

  async function microphone () {
    try {
      return await navigator.mediaDevices.getUserMedia({ audio: true, video: false })
    } catch (error) {
      notice(error?.name === 'NotFoundError' ? 'callNoMic' : 'callMicBlocked', {}, 20000)
      return null
    }
  }

  async function join (student, callId, stream = null) {
    if (current) {
      for (const track of stream?.getTracks() ?? []) track.stop()
      return
    }
    stream = stream || await microphone()
    if (!stream) return
    const onEnd = (byMe) => {
      current = null
      for (const r of rings.values()) r.render()
      if (byMe) offerRejoin(student, callId)
    }
    current = new Call({ session, student, callId, stream, dock, notice, onEnd })
    for (const r of rings.values()) r.render()
  }

  /** Whoever leaves may come back while the others are still talking. */
  function offerRejoin (student, callId) {
    const back = label('button', 'callRejoin', 'secondary call-rejoin')
    back.type = 'button'
    dock.append(back)
    const gone = setTimeout(() => back.remove(), REJOIN_MS)
    back.addEventListener('click', () => {
      clearTimeout(gone)
      back.remove()
      join(student, callId)
    })
  }

  onLanguageChange(() => { for (const r of rings.values()) r.render(); current?.render() })
  const handle = { heard, catchUp, choose, join, get current () { return current } }
  window.iepCalls = handle // for diagnosing a call from the browser console
  return handle
}

/** "Call" on a student's page and in their thread; a push's link (#call=ID) offers to join. */
export function installCallButton ({ calls, name, toolbar, threadHeading = null, awareness = null }) {
  // Presence keys are `sb:<user id>` (or `dev:<name>` in development, whose user id it is).
  const here = (userId) => [...(awareness?.getStates().values() ?? [])]
    .some((state) => state?.user?.key === `sb:${userId}` || state?.user?.key === userId)
  const button = () => {
    const made = label('button', 'callButton', 'secondary call-button')
    made.type = 'button'
    made.addEventListener('click', () => calls.choose(name, here))
    return made
  }
  toolbar.append(button())
  threadHeading?.after(button())
  const linked = /^#call=([A-Za-z0-9_-]{16,40})$/.exec(location.hash)
  if (linked) {
    const join = label('button', 'callJoin', 'call-join')
    join.type = 'button'
    join.addEventListener('click', () => { join.remove(); calls.join(name, linked[1]) })
    toolbar.append(join)
  }
}

class Call {
  constructor ({ session, student, callId, stream, dock, notice, onEnd }) {
    Object.assign(this, { session, student, callId, stream, notice, onEnd })
    this.peers = new Map() // peer id -> { pc, name, polite, makingOffer, ignoreOffer, sender, audio, level, muted }
    this.me = null
    this.inbox = Promise.resolve()
    this.muted = false
    this.ended = false
    this.bar = document.createElement('section')
    this.bar.className = 'card call-bar'
    this.bar.setAttribute('aria-label', t('callIn'))
    this.status = document.createElement('p')
    this.status.className = 'hint call-status'
    this.list = document.createElement('ul')
    this.list.className = 'call-people'
    this.muteButton = document.createElement('button')
    this.muteButton.type = 'button'
    this.muteButton.className = 'secondary call-mute'
    this.hangButton = label('button', 'callHangUp', 'danger call-hang-up')
    this.hangButton.type = 'button'
    this.bar.append(label('h2', 'callIn'), this.list, this.status, this.muteButton, this.hangButton)
    dock.append(this.bar)
    this.muteButton.addEventListener('click', () => this.setMuted(!this.muted))
    this.hangButton.addEventListener('click', () => this.hangUp(true))
    this.levels = setInterval(() => this.measure(), LEVEL_MS)
    this.connect()
    this.render()
  }

  connect () {
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws'
    const query = new URLSearchParams({ student: this.student, call: this.callId, ...this.session.params() })
    const socket = new WebSocket(`${scheme}://${location.host}/calls?${query}`)
    this.socket = socket
    socket.addEventListener('open', () => {
      this.pinger = setInterval(() => this.send({ type: 'ping' }), PING_MS)
    })
    // One message at a time, in order: a candidate must never overtake the offer it follows.
    socket.addEventListener('message', (message) => {
      this.inbox = this.inbox.then(() => this.receive(JSON.parse(message.data))).catch((error) => console.warn('call message', error))
    })
    socket.addEventListener('close', (event) => {
      clearInterval(this.pinger)
      if (this.socket !== socket || this.ended) return
      if (event.code === CALL_FULL) {
        this.notice('callFull')
        this.hangUp()
        return
      }
      if (event.code === 4403 || event.code === 4401) {
        this.notice('callFailed')
        this.hangUp()
        return
      }
      // A blip: the others saw us leave; come back as a new peer and negotiate again.
      for (const id of [...this.peers.keys()]) this.drop(id)
      this.status.textContent = t('callReconnecting')
      setTimeout(() => { if (!this.ended) this.connect() }, 1000)
    })
  }

  send (message) {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message))
  }

  signal (to, data) {
    this.send({ type: 'signal', to, data })
  }

  async receive (message) {
    if (message.type === 'welcome') {
      this.me = message.peer
      this.iceServers = message.ice_servers
      this.icePolicy = message.ice_transport_policy || 'all'
      if (this.muted) this.send({ type: 'state', muted: true })
      for (const peer of message.peers) this.add(peer)
      this.render()
    } else if (message.type === 'joined') {
      this.add(message)
      this.render()
    } else if (message.type === 'left') {
      this.drop(message.peer)
      this.render()
    } else if (message.type === 'state') {
      const peer = this.peers.get(message.peer)
      if (peer) peer.muted = message.muted
      this.render()
    } else if (message.type === 'signal') {
      await this.negotiate(message.from, message.data)
    }
  }

  add (info) {
    if (this.peers.has(info.peer) || info.peer === this.me) return
    const pc = new RTCPeerConnection({ iceServers: this.iceServers, iceTransportPolicy: this.icePolicy })
    const offers = this.me < info.peer
    // The offering side adds its microphone now (that makes the offer); the other with its answer.
    const sender = offers ? pc.addTrack(this.stream.getAudioTracks()[0], this.stream) : null
    if (sender && this.muted) sender.replaceTrack(null)
    const audio = new Audio()
    audio.autoplay = true
    const peer = { pc, sender, audio, name: info.name, muted: info.muted, polite: !offers, makingOffer: false, ignoreOffer: false, level: 0, restart: null }
    this.peers.set(info.peer, peer)
    pc.addEventListener('track', ({ track, streams }) => {
      audio.srcObject = streams[0] || new MediaStream([track])
      audio.play().catch(() => {})
    })
    pc.addEventListener('icecandidate', ({ candidate }) => this.signal(info.peer, { candidate: candidate ? candidate.toJSON() : null }))
    pc.addEventListener('negotiationneeded', async () => {
      try {
        peer.makingOffer = true
        await pc.setLocalDescription()
        this.signal(info.peer, { description: pc.localDescription.toJSON() })
      } catch (error) {
        console.warn('call offer', error)
      } finally {
        peer.makingOffer = false
      }
    })
    pc.addEventListener('iceconnectionstatechange', () => {
      const state = pc.iceConnectionState
      if (state === 'failed') pc.restartIce()
      else if (state === 'disconnected') {
        clearTimeout(peer.restart)
        peer.restart = setTimeout(() => { if (pc.iceConnectionState === 'disconnected') pc.restartIce() }, RESTART_AFTER_MS)
      }
      this.render()
    })
  }

  async negotiate (from, data) {
    const peer = this.peers.get(from)
    if (!peer) return
    const { pc } = peer
    try {
      if (data.description) {
        const description = data.description
        const collision = description.type === 'offer' && (peer.makingOffer || pc.signalingState !== 'stable')
        peer.ignoreOffer = !peer.polite && collision
        if (peer.ignoreOffer) return
        await pc.setRemoteDescription(description)
        if (description.type === 'offer') {
          if (!peer.sender) {
            const [transceiver] = pc.getTransceivers()
            transceiver.direction = 'sendrecv'
            await transceiver.sender.replaceTrack(this.track())
            transceiver.sender.setStreams?.(this.stream)
            peer.sender = transceiver.sender
          }
          await pc.setLocalDescription()
          this.signal(from, { description: pc.localDescription.toJSON() })
        }
      } else if ('candidate' in data) {
        try {
          await pc.addIceCandidate(data.candidate ?? undefined)
        } catch (error) {
          if (!peer.ignoreOffer) throw error
        }
      }
    } catch (error) {
      console.warn('call negotiation', error)
    }
  }

  drop (peerId) {
    const peer = this.peers.get(peerId)
    if (!peer) return
    clearTimeout(peer.restart)
    peer.pc.close()
    peer.audio.srcObject = null
    this.peers.delete(peerId)
  }

  /** What goes to the others: the microphone, or no track at all (not silence) when muted. */
  track () {
    return this.muted ? null : this.stream.getAudioTracks()[0]
  }

  setMuted (muted) {
    this.muted = muted
    for (const peer of this.peers.values()) peer.sender?.replaceTrack(this.track())
    this.send({ type: 'state', muted })
    this.render()
  }

  async measure () {
    for (const peer of this.peers.values()) {
      if (peer.pc.connectionState === 'closed') continue
      const stats = await peer.pc.getStats()
      let level = 0
      stats.forEach((report) => {
        if (report.type === 'inbound-rtp' && report.kind === 'audio') level = report.audioLevel ?? 0
      })
      peer.level = level
    }
    this.render()
  }

  /** For tests and diagnosis: audio received from each peer so far. */
  async received () {
    const found = {}
    for (const [id, peer] of this.peers) {
      const stats = await peer.pc.getStats()
      stats.forEach((report) => {
        if (report.type === 'inbound-rtp' && report.kind === 'audio') {
          found[id] = { name: peer.name, packets: report.packetsReceived, bytes: report.bytesReceived }
        }
      })
      const pair = [...stats.values()].find((r) => r.type === 'candidate-pair' && r.nominated && r.state === 'succeeded')
      const local = pair && stats.get(pair.localCandidateId)
      if (found[id] && local) found[id].via = local.candidateType
    }
    return found
  }

  render () {
    const rows = [...this.peers.values()].map((peer) => {
      const row = document.createElement('li')
      const name = document.createElement('bdi')
      name.textContent = peer.name
      row.append(name)
      const speaking = !peer.muted && peer.level > SPEAKING_LEVEL
      row.classList.toggle('speaking', speaking)
      if (peer.muted) row.append(' ', label('span', 'callMuted', 'hint'))
      else if (speaking) row.append(' ', label('span', 'callSpeaking', 'hint'))
      return row
    })
    this.list.replaceChildren(...rows)
    this.status.textContent = this.peers.size ? '' : t('callWaiting')
    this.muteButton.textContent = t(this.muted ? 'callUnmute' : 'callMute')
    this.muteButton.setAttribute('aria-pressed', String(this.muted))
    this.bar.dir = language() === 'ar' ? 'rtl' : 'ltr'
  }

  hangUp (byMe = false) {
    if (this.ended) return
    this.ended = true
    clearInterval(this.levels)
    clearInterval(this.pinger)
    for (const id of [...this.peers.keys()]) this.drop(id)
    for (const track of this.stream.getTracks()) track.stop()
    this.socket?.close()
    this.bar.remove()
    this.onEnd(byMe)
  }
}
