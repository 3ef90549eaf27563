// A text input or textarea bound to a Y.Text character by character.
//
// Local typing becomes an insert and a delete at the caret (never "replace the whole value"),
// so two people typing into one field both keep every character, each in their own order.
// Remote changes are applied around the local caret and selection without moving them. While
// an input method composes (Arabic and other keyboards on phones), the control is never
// rewritten: remote changes wait, and the composed text is sent when composition ends.

/** Where the edit that turned `before` into `after` is, given the caret after it. */
export function diffAtCaret (before, after, caret = after.length) {
  let suffix = 0
  const maxSuffix = Math.min(before.length, after.length, after.length - Math.min(caret, after.length))
  while (suffix < maxSuffix && before[before.length - 1 - suffix] === after[after.length - 1 - suffix]) suffix++
  let prefix = 0
  const maxPrefix = Math.min(before.length, after.length) - suffix
  while (prefix < maxPrefix && before[prefix] === after[prefix]) prefix++
  // Never split a surrogate pair: Y.Text counts UTF-16 code units, as the DOM does.
  if (prefix > 0 && isHighSurrogate(before.charCodeAt(prefix - 1))) prefix--
  if (suffix > 0 && isLowSurrogate(before.charCodeAt(before.length - suffix))) suffix--
  return {
    index: prefix,
    remove: before.length - prefix - suffix,
    insert: after.slice(prefix, after.length - suffix),
  }
}

const isHighSurrogate = (code) => code >= 0xd800 && code <= 0xdbff
const isLowSurrogate = (code) => code >= 0xdc00 && code <= 0xdfff

/**
 * Where `index` of the old text is after `delta` (a Y.Text event delta). A remote insert at
 * exactly `index` goes after it: the local person keeps typing before the other's text.
 */
export function moveIndex (index, delta) {
  let old = 0
  let moved = index
  for (const op of delta) {
    if (old > index) break
    if (op.retain !== undefined) {
      old += op.retain
    } else if (op.insert !== undefined) {
      const length = typeof op.insert === 'string' ? op.insert.length : 1
      if (old < index) moved += length
    } else if (op.delete !== undefined) {
      moved -= Math.max(0, Math.min(op.delete, index - old))
      old += op.delete
    }
  }
  return moved
}

/**
 * Bind `control` to `ytext`. Local changes are made in transactions with `origin` (what an
 * undo manager tracks). Returns an unbind function.
 */
export function bindText (control, ytext, origin) {
  let shown = ytext.toString()
  let composing = false
  let waiting = false // remote changes arrived while composing
  control.value = shown

  const showRemote = (delta) => {
    const value = ytext.toString()
    if (control.value === value) {
      shown = value
      return
    }
    const focused = document.activeElement === control
    const start = focused ? control.selectionStart : null
    const end = focused ? control.selectionEnd : null
    const direction = focused ? control.selectionDirection : undefined
    control.value = value
    shown = value
    if (focused && start !== null && delta) {
      control.setSelectionRange(moveIndex(start, delta), moveIndex(end, delta), direction)
    }
  }

  const sendLocal = () => {
    const value = control.value
    if (value === shown) return
    const caret = control.selectionEnd ?? value.length
    if (waiting) {
      // Remote text arrived during composition and is not on screen: put the composed
      // change at the same place in the current text, then show everything.
      const { index, remove, insert } = diffAtCaret(shown, value, caret)
      const before = ytext.toString()
      const anchor = locate(shown, before, index)
      ytext.doc.transact(() => {
        if (remove > 0) ytext.delete(anchor, Math.min(remove, before.length - anchor))
        if (insert) ytext.insert(anchor, insert)
      }, origin)
      waiting = false
      const caretAfter = anchor + insert.length
      showRemote(null)
      if (document.activeElement === control) control.setSelectionRange(caretAfter, caretAfter)
      return
    }
    const { index, remove, insert } = diffAtCaret(shown, value, caret)
    ytext.doc.transact(() => {
      if (remove > 0) ytext.delete(index, remove)
      if (insert) ytext.insert(index, insert)
    }, origin)
    shown = value
  }

  const onInput = (event) => {
    if (event.isComposing || composing) return
    sendLocal()
  }
  const onCompositionStart = () => { composing = true }
  const onCompositionEnd = () => {
    composing = false
    sendLocal()
    if (waiting) {
      waiting = false
      showRemote(null)
    }
  }
  const observer = (event, transaction) => {
    // Our own typing: the control shows it already (an undo has the undo manager's origin).
    if (transaction.origin === origin && ytext.toString() === control.value) {
      shown = control.value
      return
    }
    if (composing) {
      waiting = true
      return
    }
    showRemote(event.delta)
  }

  control.addEventListener('input', onInput)
  control.addEventListener('compositionstart', onCompositionStart)
  control.addEventListener('compositionend', onCompositionEnd)
  ytext.observe(observer)
  return () => {
    control.removeEventListener('input', onInput)
    control.removeEventListener('compositionstart', onCompositionStart)
    control.removeEventListener('compositionend', onCompositionEnd)
    ytext.unobserve(observer)
  }
}

/**
 * `index` in `shown` mapped into `current` (which has remote changes `shown` lacks): the
 * same text before it, found by the longest common prefix and suffix around it.
 */
function locate (shown, current, index) {
  const { index: at, remove, insert } = diffAtCaret(shown, current, current.length)
  if (index <= at) return index
  if (index >= at + remove) return index - remove + insert.length
  return at + insert.length
}
