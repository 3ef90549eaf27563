// A parent's page for one acknowledgement request: the version, read-only, in their language,
// and two answers: "I have read this IEP" or "I have a question" (with a comment).
import { addStrings, applyLanguage, label, t } from './i18n.js'
import { RECORD_STRINGS } from './records-strings.js'
import { bdi, el, renderContent, whenText, withName } from './records-view.js'

addStrings(RECORD_STRINGS)

export async function acknowledgementPage (app, ackId, session) {
  const url = withName(`/api/acknowledgements/${encodeURIComponent(ackId)}`, session)
  const headers = { accept: 'application/json', 'content-type': 'application/json', ...session.authHeaders() }
  const response = await fetch(url, { headers })
  if (!response.ok) {
    app.replaceChildren(el('p', 'banner refused-banner', `${response.status}`))
    return
  }
  const request = await response.json()
  const page = el('div', 'ack-page')
  const heading = label('h1', 'ackTitle')
  const meta = request.content.meta || {}
  const title = el('h2')
  title.append(bdi(meta.title || request.document))
  const about = el('p', 'hint')
  about.append(label('span', 'versions'), ': ', bdi(request.version.name), ' · ', whenText(request.version.created_at))
  const answer = el('section', 'card ack-answer')
  page.append(heading, title, about, answer, renderContent(request.content))
  app.replaceChildren(page)

  const done = (text) => {
    answer.replaceChildren(label('p', text, 'banner ack-done'))
    applyLanguage()
  }
  if (request.state !== 'pending') {
    done('ackAnswered')
  } else if (request.mine) {
    const read = label('button', 'ackRead', 'ack-read')
    read.type = 'button'
    const ask = label('button', 'ackQuestion', 'secondary ack-question')
    ask.type = 'button'
    const comment = el('textarea', 'ack-comment')
    comment.dir = 'auto'
    comment.hidden = true
    comment.dataset.i18nPlaceholder = 'ackComment'
    comment.placeholder = t('ackComment')
    const send = label('button', 'ackSend', 'ack-send')
    send.type = 'button'
    send.hidden = true
    const post = async (body) => {
      const answered = await fetch(url, { method: 'POST', headers, body: JSON.stringify(body) })
      if (answered.ok) done('ackThanks')
    }
    read.addEventListener('click', () => post({ answer: 'acknowledged' }))
    ask.addEventListener('click', () => {
      comment.hidden = false
      send.hidden = false
      comment.focus()
    })
    send.addEventListener('click', () => {
      if (comment.value.trim()) post({ answer: 'question', comment: comment.value.trim() })
    })
    answer.append(read, ask, comment, send)
  }
  applyLanguage()
}
