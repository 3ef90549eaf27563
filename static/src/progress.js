// Each IEP goal's measurements over time against its baseline and target, from the sessions
// (`GET /api/students/{name}/progress`), redrawn live when a session is completed.
import { addStrings, label, language, onLanguageChange, t } from './i18n.js'
import { LiveEvents } from './live.js'

addStrings({
  en: {
    progressTitle: 'Progress on goals',
    noMeasurements: 'No measurements yet.',
    baselineLine: 'baseline',
    targetLine: 'target',
    latest: 'latest',
  },
  ar: {
    progressTitle: 'التقدّم نحو الأهداف',
    noMeasurements: 'لا قياسات بعد.',
    baselineLine: 'المستوى الحالي',
    targetLine: 'المستهدف',
    latest: 'آخر قياس',
  },
})

const SVG = 'http://www.w3.org/2000/svg'
const WIDTH = 320
const HEIGHT = 120
const PAD = 14

function svg (tag, attributes) {
  const element = document.createElementNS(SVG, tag)
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value)
  return element
}

/** One goal's chart: dashed baseline and target, the measurements as a line of points. */
export function goalChart (goal) {
  const values = goal.points.map((p) => p.value)
  const scale = [...values, goal.baseline, goal.target].filter((v) => typeof v === 'number')
  const low = Math.min(...scale)
  const high = Math.max(...scale)
  const span = high - low || 1
  const y = (v) => HEIGHT - PAD - ((v - low) / span) * (HEIGHT - 2 * PAD)
  const times = goal.points.map((p) => Date.parse(p.at))
  const first = Math.min(...times)
  const width = Math.max(...times) - first || 1
  const x = (time) => goal.points.length === 1 ? WIDTH / 2 : PAD + ((time - first) / width) * (WIDTH - 2 * PAD)
  const chart = svg('svg', { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, class: 'goal-chart', role: 'img', direction: 'ltr' })
  for (const [key, value] of [['baseline', goal.baseline], ['target', goal.target]]) {
    if (typeof value !== 'number') continue
    chart.append(svg('line', { x1: PAD, x2: WIDTH - PAD, y1: y(value), y2: y(value), class: `chart-${key}` }))
  }
  if (goal.points.length) {
    const points = goal.points.map((p, i) => `${x(times[i])},${y(p.value)}`).join(' ')
    chart.append(svg('polyline', { points, class: 'chart-line' }))
    goal.points.forEach((p, i) => {
      const dot = svg('circle', { cx: x(times[i]), cy: y(p.value), r: 3.5, class: 'chart-point' })
      const title = svg('title', {})
      title.textContent = `${new Date(p.at).toLocaleDateString(language())}: ${p.value} ${p.unit}`
      dot.append(title)
      chart.append(dot)
    })
  }
  const format = new Intl.NumberFormat(language())
  const last = goal.points[goal.points.length - 1]
  chart.setAttribute('aria-label', [
    goal.title,
    last ? `${t('latest')} ${format.format(last.value)} ${last.unit}` : t('noMeasurements'),
    typeof goal.target === 'number' ? `${t('targetLine')} ${format.format(goal.target)}` : '',
  ].filter(Boolean).join(', '))
  return chart
}

function legend (goal) {
  const format = new Intl.NumberFormat(language())
  const row = document.createElement('p')
  row.className = 'chart-legend'
  const last = goal.points[goal.points.length - 1]
  const parts = []
  if (last) parts.push(`${t('latest')}: ${format.format(last.value)} ${last.unit}`)
  if (typeof goal.baseline === 'number') parts.push(`${t('baselineLine')}: ${format.format(goal.baseline)}`)
  if (typeof goal.target === 'number') parts.push(`${t('targetLine')}: ${format.format(goal.target)}`)
  row.textContent = parts.length ? parts.join(' · ') : t('noMeasurements')
  return row
}

/** The progress card of one IEP, appended to `container`; it follows the sessions live. */
export function mountProgress (container, name, session) {
  const card = document.createElement('section')
  card.className = 'card goal-progress'
  card.id = 'goal-progress'
  const list = document.createElement('div')
  list.className = 'goal-charts'
  card.append(label('h2', 'progressTitle'), list)
  container.append(card)
  let goals = []

  const render = () => {
    list.replaceChildren(...goals.map((goal) => {
      const figure = document.createElement('figure')
      figure.className = 'goal-chart-item'
      figure.dataset.goal = goal.id
      const caption = document.createElement('figcaption')
      const title = document.createElement('bdi')
      title.textContent = goal.title || t('untitled')
      caption.append(title)
      figure.append(caption, goalChart(goal), legend(goal))
      return figure
    }))
  }
  const load = async () => {
    try {
      const response = await fetch(`/api/students/${name}/progress`, { headers: { accept: 'application/json', ...session.authHeaders() } })
      if (!response.ok) return
      goals = (await response.json()).goals
      render()
    } catch {
      // The next event or reload tries again.
    }
  }
  const live = new LiveEvents(session, { onEvent: load, onReset: load })
  live.subscribe([`student:${name}`])
  live.start()
  onLanguageChange(render)
  load()
  return { reload: load, live }
}
