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
      user: { name: session.name, color, colorLight: `${color}33` },
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

  /** States of everyone with a name, self first. */
  people () {
    const self = this.awareness.clientID
    const people = []
    for (const [clientId, state] of this.awareness.getStates()) {
      if (state && state.user && typeof state.user.name === 'string') {
        people.push({ clientId, state, isSelf: clientId === self })
      }
    }
    return people.sort((a, b) => Number(b.isSelf) - Number(a.isSelf))
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
      const field = person.state.field
      if (person.isSelf || typeof field !== 'string') continue
      if (!editors.has(field)) editors.set(field, [])
      editors.get(field).push(person)
    }
    for (const slot of this.root.querySelectorAll('[data-presence-for]')) {
      const here = editors.get(slot.dataset.presenceFor) || []
      slot.replaceChildren(...here.map(({ state }) => nameChip(state, false)))
      slot.closest('[data-field]')?.classList.toggle('being-edited', here.length > 0)
      if (here.length > 0) slot.closest('[data-field]')?.style.setProperty('--person-colour', here[0].state.user.color)
    }
  }
}
