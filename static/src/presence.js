// Who is here and which field each person is editing, from the awareness states.
// Local state: { user: { name, color, colorLight }, field: "goals/<id>/title" | null }.
import { t } from './i18n.js'

const COLOURS = ['#d1495b', '#00798c', '#edae49', '#66a182', '#8e6c8a', '#2e4057', '#e07a5f', '#3d5a80']

export function colourFor (key) {
  let hash = 0
  for (const char of key) hash = (hash * 31 + char.codePointAt(0)) >>> 0
  return COLOURS[hash % COLOURS.length]
}

function nameChip (state, isSelf) {
  const chip = document.createElement('span')
  chip.className = 'person'
  chip.style.setProperty('--person-colour', state.user.color)
  const dot = document.createElement('span')
  dot.className = 'dot'
  const name = document.createElement('bdi')
  name.textContent = state.user.name
  chip.append(dot, name)
  if (isSelf) {
    const you = document.createElement('span')
    you.className = 'you'
    you.dataset.i18n = 'you'
    you.textContent = t('you')
    chip.append(' ', you)
  }
  return chip
}

export class Presence {
  constructor (awareness, session, bar, root) {
    this.awareness = awareness
    this.bar = bar
    this.root = root
    const color = colourFor(session.userKey)
    awareness.setLocalState({
      // `key` tells one person's tabs apart from two people who share a name.
      user: { name: session.name, key: session.userKey, color, colorLight: `${color}33` },
      field: null,
    })
    awareness.on('change', () => this.render())
    // Leave at once when the page goes, rather than when the socket times out.
    window.addEventListener('pagehide', () => awareness.setLocalState(null))
    root.addEventListener('focusin', (event) => this.focus(event.target))
    root.addEventListener('focusout', () => this.setField(null))
    this.render()
  }

  focus (target) {
    const owner = target.closest('[data-field]')
    this.setField(owner ? owner.dataset.field : null)
  }

  setField (field) {
    if (this.awareness.getLocalState()?.field !== field) {
      this.awareness.setLocalStateField('field', field)
    }
  }

  /** Everyone with a name, once each (a person in two tabs is one person), self first. */
  people () {
    const self = this.awareness.clientID
    const selfKey = personKey(this.awareness.getLocalState())
    const byPerson = new Map()
    for (const [clientId, state] of this.awareness.getStates()) {
      if (!state || !state.user || typeof state.user.name !== 'string') continue
      const key = personKey(state)
      const isSelf = clientId === self || key === selfKey
      const fields = byPerson.get(key)?.fields || []
      if (typeof state.field === 'string' && clientId !== self) fields.push(state.field)
      if (!byPerson.has(key) || clientId === self) byPerson.set(key, { clientId, state, isSelf, fields })
      else byPerson.get(key).fields = fields
    }
    return [...byPerson.values()].sort((a, b) => Number(b.isSelf) - Number(a.isSelf))
  }

  render () {
    const people = this.people()
    const heading = document.createElement('span')
    heading.className = 'presence-label'
    heading.dataset.i18n = 'here'
    heading.textContent = t('here')
    const chips = people.map(({ clientId, state, isSelf }) => {
      const chip = nameChip(state, isSelf)
      chip.dataset.clientId = String(clientId)
      return chip
    })
    this.bar.replaceChildren(heading, ...chips)

    const editors = new Map()
    for (const person of people) {
      if (person.isSelf) continue
      for (const field of new Set(person.fields)) {
        if (!editors.has(field)) editors.set(field, [])
        editors.get(field).push(person)
      }
    }
    for (const slot of this.root.querySelectorAll('[data-presence-for]')) {
      const here = editors.get(slot.dataset.presenceFor) || []
      slot.replaceChildren(...here.map(({ state }) => nameChip(state, false)))
      slot.closest('[data-field]')?.classList.toggle('being-edited', here.length > 0)
      if (here.length > 0) slot.closest('[data-field]')?.style.setProperty('--person-colour', here[0].state.user.color)
    }
  }
}

function personKey (state) {
  return typeof state?.user?.key === 'string' ? state.user.key : `name:${state?.user?.name}`
}
