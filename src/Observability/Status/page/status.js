// The status page: asks the service for status.json every second and draws what it says: the
// pipeline's graph with each task's counts, the throughput of the last 15 minutes, the
// partitions, the dead-letter reasons and the settings. Plain browser JavaScript, no
// dependencies. When the service does not answer, the page says so and keeps the last answer.

const pollMs = 1000
const hiddenPollMs = 5000
const timeoutMs = 3000
const svgNs = "http://www.w3.org/2000/svg"
const numbers = new Intl.NumberFormat()

const view = {
  paused: false,
  /** The last answer, and when the service last answered (browser time). */
  latest: undefined,
  answeredAt: undefined,
  failingSince: undefined,
  failure: "",
  /** What the graph was drawn for; it is rebuilt only when the plan changes. */
  shape: "",
  settingsShown: false,
}

const byId = (id) => document.getElementById(id)

/** An element with attributes (`text` sets its text) and children. */
const el = (tag, attributes = {}, ...children) => {
  const node = document.createElement(tag)
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue
    if (name === "text") node.textContent = String(value)
    else node.setAttribute(name, value === true ? "" : String(value))
  }
  for (const child of children) if (child !== undefined && child !== null) node.append(child)
  return node
}

const svgEl = (tag, attributes = {}, text) => {
  const node = document.createElementNS(svgNs, tag)
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value))
  if (text !== undefined) node.textContent = text
  return node
}

const count = (n) => (n === null || n === undefined ? "–" : numbers.format(n))
const clock = (ms) => (ms === null || ms === undefined ? "–" : new Date(ms).toLocaleTimeString())
const millis = (n) => (n === null || n === undefined ? "–" : n < 10 ? n.toFixed(2) : n.toFixed(1))

const duration = (seconds) => {
  const s = Math.max(0, Math.round(seconds))
  if (s < 60) return `${s} s`
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`
}

// --- the graph --------------------------------------------------------------------------------

/** Columns of the graph: a task stands one column right of the furthest of its dependencies. */
const columnsOf = (nodes) => {
  const byName = new Map(nodes.map((n) => [n.name, n]))
  const depth = new Map()
  const depthOf = (name, trail) => {
    if (depth.has(name)) return depth.get(name)
    const node = byName.get(name)
    if (node === undefined || trail.has(name)) return 0
    trail.add(name)
    const deps = node.dependsOn.filter((d) => byName.has(d))
    const d = deps.length === 0 ? 1 : 1 + Math.max(...deps.map((dep) => depthOf(dep, trail)))
    trail.delete(name)
    depth.set(name, d)
    return d
  }
  const columns = []
  for (const node of nodes) {
    const d = depthOf(node.name, new Set())
    if (columns[d] === undefined) columns[d] = []
    columns[d].push(node)
  }
  // Within a column, a task sits near the mean row of its dependencies, so that edges cross less.
  const row = new Map()
  for (const column of columns) {
    if (column === undefined) continue
    const mean = (node) => {
      const rows = node.dependsOn.filter((d) => row.has(d)).map((d) => row.get(d))
      return rows.length === 0 ? 0 : rows.reduce((a, b) => a + b, 0) / rows.length
    }
    column.sort((a, b) => mean(a) - mean(b))
    for (const [i, node] of column.entries()) row.set(node.name, i)
  }
  return columns.filter((c) => c !== undefined)
}

const rowsOf = (node) => [
  ["in", "in"],
  ["valid", node.kind === "sink" ? "written" : "valid"],
  ["invalid", node.kind === "sink" ? "refused" : "invalid"],
  ...(node.type === "duplicate_check" ? [["duplicates", "duplicates"]] : []),
  ...(node.type === "filter" ? [["filtered", "filtered"]] : []),
  ["retries", "retries"],
  ["failures", "failures"],
  ["msPerBatch", "ms/batch"],
]

const countsTable = (id, rows) =>
  el(
    "table",
    { class: "counts" },
    el(
      "thead",
      {},
      el(
        "tr",
        {},
        el("td"),
        el("th", { scope: "col", text: "total" }),
        el("th", { scope: "col", text: "1 min" }),
      ),
    ),
    el(
      "tbody",
      {},
      ...rows.map(([key, label]) =>
        el(
          "tr",
          {},
          el("th", { scope: "row", text: label }),
          el("td", { "data-k": `total.${key}`, id: `${id}-total-${key}` }),
          el("td", { "data-k": `lastMinute.${key}`, id: `${id}-min-${key}` }),
        ),
      ),
    ),
  )

const taskCard = (node, index) => {
  const id = `node-${index}`
  const detail = node.target === undefined ? node.type : `${node.type} → ${node.target}`
  return el(
    "article",
    {
      class: `node ${node.kind}`,
      tabindex: 0,
      "data-task": node.name,
      "aria-labelledby": `${id}-name`,
      "aria-describedby": `${id}-type`,
    },
    el("h3", { id: `${id}-name`, text: node.name }),
    el("div", { class: "type", id: `${id}-type`, text: detail }),
    countsTable(id, rowsOf(node)),
    el("ul", { class: "rules", "data-k": "rules", "aria-label": "invalid by rule (total · 1 min)" }),
    el(
      "details",
      { class: "more-rules", hidden: true },
      el("summary"),
      el("ul", { class: "rules", "aria-label": "more rules (total · 1 min)" }),
    ),
  )
}

const edgeCard = (kind, title, detail, rows) =>
  el(
    "article",
    {
      class: `node ${kind}`,
      tabindex: 0,
      "data-node": kind,
      "aria-labelledby": `${kind}-name`,
      "aria-describedby": `${kind}-type`,
    },
    el("h3", { id: `${kind}-name`, text: title }),
    el("div", { class: "type", id: `${kind}-type`, text: detail }),
    countsTable(kind, rows),
  )

const shapeOf = (s) =>
  JSON.stringify([s.pipeline?.digest, s.consumer.sourceTopic, s.dag.nodes.map((n) => [n.name, n.dependsOn])])

const buildDag = (s) => {
  const grid = byId("dag-grid")
  const columns = columnsOf(s.dag.nodes)
  const index = new Map(s.dag.nodes.map((n, i) => [n.name, i]))
  const source = edgeCard("source", "source", `Kafka topic ${s.consumer.sourceTopic}`, [
    ["consumed", "consumed"],
    ["batches", "batches"],
  ])
  const dead = edgeCard("dead", "dead letters", `Kafka topic ${s.consumer.deadLetterTopic}`, [
    ["deadLettered", "records"],
  ])
  const cells = [el("div", { class: "dag-column" }, source)]
  columns.forEach((column, i) => {
    const cards = column.map((node) => taskCard(node, index.get(node.name)))
    if (i === columns.length - 1) cards.push(dead)
    cells.push(el("div", { class: "dag-column" }, ...cards))
  })
  if (columns.length === 0) cells.push(el("div", { class: "dag-column" }, dead))
  grid.replaceChildren(...cells)
}

const cardOf = (name) => document.querySelector(`.node[data-task="${CSS.escape(name)}"]`)

const drawEdges = (s) => {
  const edges = byId("edges")
  const inner = edges.parentElement.getBoundingClientRect()
  const marker = svgEl("marker", {
    id: "arrow",
    viewBox: "0 0 8 8",
    refX: 7,
    refY: 4,
    markerWidth: 7,
    markerHeight: 7,
    orient: "auto",
  })
  marker.append(svgEl("path", { d: "M0,0 L8,4 L0,8 z" }))
  const defs = svgEl("defs")
  defs.append(marker)
  const paths = []
  const names = new Set(s.dag.nodes.map((n) => n.name))
  const connect = (from, to, label) => {
    if (from === null || to === null) return
    const a = from.getBoundingClientRect()
    const b = to.getBoundingClientRect()
    const x1 = a.right - inner.left
    const y1 = a.top + a.height / 2 - inner.top
    const x2 = b.left - inner.left - 1
    const y2 = b.top + b.height / 2 - inner.top
    const dx = Math.max(12, (x2 - x1) / 2)
    paths.push(
      svgEl("path", {
        class: "edge",
        "data-edge": label,
        d: `M${x1},${y1} C${x1 + dx},${y1} ${x2 - dx},${y2} ${x2},${y2}`,
        "marker-end": "url(#arrow)",
      }),
    )
  }
  const source = document.querySelector('.node[data-node="source"]')
  for (const node of s.dag.nodes) {
    const deps = node.dependsOn.filter((d) => names.has(d))
    if (deps.length === 0) connect(source, cardOf(node.name), `source->${node.name}`)
    for (const dep of deps) connect(cardOf(dep), cardOf(node.name), `${dep}->${node.name}`)
  }
  edges.replaceChildren(defs, ...paths)
}

const valueAt = (object, path) => path.split(".").reduce((o, key) => (o === undefined ? o : o[key]), object)

const ruleItems = (entries) =>
  entries.map(([rule, total, recent]) =>
    el(
      "li",
      { "data-rule": rule },
      el("span", { text: rule }),
      el("span", { class: "n", text: `${count(total)} · ${count(recent)}` }),
    ),
  )

const renderDag = (s) => {
  const shape = shapeOf(s)
  if (shape !== view.shape) {
    buildDag(s)
    view.shape = shape
  }
  for (const node of s.dag.nodes) {
    const card = cardOf(node.name)
    if (card === null) continue
    for (const cell of card.querySelectorAll("td[data-k]")) {
      const value = valueAt(node, cell.dataset.k)
      cell.textContent = cell.dataset.k.endsWith("msPerBatch") ? millis(value) : count(value)
    }
    card.classList.toggle("failing", node.lastMinute.failures > 0)
    const rules = Object.entries(node.total.invalidByRule)
      .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
      .map(([rule, total]) => [rule, total, node.lastMinute.invalidByRule[rule] ?? 0])
    card.querySelector('ul[data-k="rules"]').replaceChildren(...ruleItems(rules.slice(0, 3)))
    const more = card.querySelector("details.more-rules")
    more.hidden = rules.length <= 3
    more.querySelector("summary").textContent = `${rules.length - 3} more rules`
    more.querySelector("ul").replaceChildren(...ruleItems(rules.slice(3)))
  }
  const totals = { total: s.totals.total, lastMinute: s.totals.lastMinute }
  for (const cell of document.querySelectorAll(".node[data-node] td[data-k]")) {
    cell.textContent = count(valueAt(totals, cell.dataset.k))
  }
  drawEdges(s)
}

// --- throughput -------------------------------------------------------------------------------

const niceCeiling = (n) => {
  if (n <= 1) return 1
  const power = 10 ** Math.floor(Math.log10(n))
  const steps = [1, 2, 2.5, 5, 10]
  return steps.map((f) => f * power).find((v) => v >= n) ?? 10 * power
}

const recentRate = (values) => {
  const tail = values.slice(-5)
  return tail.length === 0 ? 0 : tail.reduce((a, b) => a + b, 0) / tail.length
}

const renderChart = (s) => {
  const t = s.throughput
  // Each point counts the records of one step.
  const perSecond = (counts) => counts.map((n) => n / t.stepSeconds)
  const series = [
    { label: "in", cls: "s-in", values: perSecond(t.in) },
    ...Object.entries(t.written).map(([sink, counts], i) => ({
      label: `written: ${sink}`,
      cls: `s-${i % 3}`,
      values: perSecond(counts),
    })),
    { label: "dead-lettered", cls: "s-dead", values: perSecond(t.deadLettered) },
  ]
  const box = byId("chart")
  const width = Math.max(320, box.clientWidth)
  const height = 190
  const left = 48
  const right = 8
  const top = 8
  const bottom = 20
  const span = 900 / t.stepSeconds
  const max = niceCeiling(Math.max(1, ...series.flatMap((x) => x.values)))
  const x = (i, n) => left + ((width - left - right) * (span - (n - 1 - i))) / span
  const y = (v) => top + (height - top - bottom) * (1 - v / max)
  const now = series.map((x) => `${x.label} ${count(Math.round(recentRate(x.values)))}`).join(", ")
  const chart = svgEl("svg", {
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    "aria-label": `Records per second over the last 15 minutes; now: ${now}`,
  })
  for (const v of [0, max / 2, max]) {
    chart.append(svgEl("line", { class: "grid", x1: left, x2: width - right, y1: y(v), y2: y(v) }))
    chart.append(svgEl("text", { x: left - 6, y: y(v) + 4, "text-anchor": "end" }, count(v)))
  }
  for (const minutes of [15, 10, 5, 0]) {
    const at = left + ((width - left - right) * (span - (minutes * 60) / t.stepSeconds)) / span
    const label = minutes === 0 ? "now" : `−${minutes} min`
    chart.append(
      svgEl("text", { x: at, y: height - 4, "text-anchor": minutes === 0 ? "end" : "middle" }, label),
    )
  }
  for (const line of series) {
    if (line.values.length === 0) continue
    const n = line.values.length
    const d = line.values
      .map((v, i) => `${i === 0 ? "M" : "L"}${x(i, n).toFixed(1)},${y(v).toFixed(1)}`)
      .join("")
    chart.append(svgEl("path", { class: `series ${line.cls}`, "data-series": line.label, d }))
  }
  box.replaceChildren(chart)
  byId("legend").replaceChildren(
    ...series.map((line) =>
      el(
        "li",
        { "data-series": line.label },
        el("span", { class: `swatch ${line.cls}` }),
        el("span", { text: `${line.label}: ${count(Math.round(recentRate(line.values)))}/s` }),
      ),
    ),
  )
}

// --- partitions, dead letters, settings ---------------------------------------------------------

const partitionState = (p, s) => {
  const now = s.now
  if (p.stalled) {
    const stall = p.stall
    return el(
      "td",
      { class: "state-stalled", "data-k": "state" },
      `stalled for ${duration((now - p.stalledSince) / 1000)}`,
      el("span", {
        class: "detail",
        text: `since ${clock(p.stalledSince)}, offsets ${stall.offsets}: ${stall.what} keeps failing (${stall.retries} retries): ${stall.error}`,
      }),
    )
  }
  if (p.oldestBatchSeconds !== null && p.oldestBatchSeconds >= 10) {
    return el("td", {
      class: "state-waiting",
      "data-k": "state",
      text: `batch in flight for ${duration(p.oldestBatchSeconds)}`,
    })
  }
  if (!p.assigned) return el("td", { class: "state-ok", "data-k": "state", text: "not assigned here" })
  const quietSeconds = (now - (p.lastCommitAt ?? s.startedAt)) / 1000
  if (p.lag !== null && p.lag > 0 && quietSeconds >= 10) {
    // Records wait and this instance has committed nothing for a while.
    return el("td", {
      class: "state-waiting",
      "data-k": "state",
      text: `waiting: no commit for ${duration(quietSeconds)}`,
    })
  }
  return el("td", { class: "state-ok", "data-k": "state", text: "ok" })
}

const renderPartitions = (s) => {
  const body = byId("partitions").tBodies[0]
  byId("lag-source").textContent =
    s.consumer.lagSource === "none"
      ? "lag not known yet"
      : `lag from the ${s.consumer.lagSource === "broker" ? "broker" : "last commits"}`
  if (s.partitions.length === 0) {
    body.replaceChildren(el("tr", {}, el("td", { colspan: 6, class: "empty", text: "no partitions yet" })))
    return
  }
  body.replaceChildren(
    ...s.partitions.map((p) =>
      el(
        "tr",
        { "data-partition": p.partition, class: p.stalled ? "stalled" : "" },
        el("th", { scope: "row", text: p.partition }),
        el("td", { text: p.assigned ? "yes" : "no" }),
        el("td", { class: "number", text: p.committedOffset ?? "–" }),
        el("td", { class: "number", text: count(p.lag) }),
        partitionState(p, s),
        el("td", {
          text:
            p.lastCommitAt === null
              ? "–"
              : `${clock(p.lastCommitAt)} (${duration((s.now - p.lastCommitAt) / 1000)} ago)`,
        }),
      ),
    ),
  )
}

const renderReasons = (s) => {
  const body = byId("reasons").tBodies[0]
  const reasons = s.deadLetters.reasons
  byId("dead-total").textContent =
    `${count(s.totals.total.deadLettered)} since start · ${count(s.totals.lastMinute.deadLettered)} last minute`
  if (reasons.length === 0) {
    body.replaceChildren(el("tr", {}, el("td", { colspan: 5, class: "empty", text: "none" })))
    return
  }
  body.replaceChildren(
    ...reasons
      .slice(0, 15)
      .map((r) =>
        el(
          "tr",
          { "data-reason": `${r.stage}/${r.task}/${r.rule}` },
          el("td", { text: r.stage }),
          el("td", { text: `${r.task} / ${r.rule}` }),
          el("td", { text: r.fields.map((f) => f.field).join(", ") || "–" }),
          el("td", { class: "number", text: count(r.total) }),
          el("td", { class: "number", text: count(r.lastMinute) }),
        ),
      ),
  )
}

const flatten = (value, prefix, out) => {
  if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    for (const [key, inner] of Object.entries(value))
      flatten(inner, prefix === "" ? key : `${prefix}.${key}`, out)
  } else {
    out.push([prefix, Array.isArray(value) ? value.join(", ") : String(value)])
  }
  return out
}

const renderSettings = (s) => {
  if (view.settingsShown) return
  view.settingsShown = true
  byId("settings").replaceChildren(
    ...flatten(s.settings, "", []).map(([name, value]) =>
      el("div", {}, el("dt", { text: name }), el("dd", { text: value })),
    ),
  )
}

// --- header and banner --------------------------------------------------------------------------

const stateLabels = { running: "running", stalled: "stalled", starting: "starting", stopping: "stopping" }

const renderHeader = (s) => {
  const name = s.pipeline?.name ?? "pipeline"
  byId("name").textContent = name
  const offline = view.failingSince !== undefined
  const state = offline ? "offline" : s.state
  const label = offline ? "no answer" : stateLabels[s.state]
  const pill = byId("state")
  pill.className = `pill pill-${state}`
  pill.dataset.state = state
  if (pill.textContent !== label) pill.textContent = label
  document.title = `${name}: ${label}`
  const items = [
    ["file", s.pipeline?.file ?? "–"],
    ["generation", s.pipeline === null ? "–" : String(s.pipeline.generation)],
    ["version", s.pipeline?.digest ?? "–"],
    ["loaded", clock(s.pipeline?.loadedAt)],
    ["started", `${clock(s.startedAt)} (${duration((s.now - s.startedAt) / 1000)} ago)`],
    ["group", `${s.consumer.group}${s.consumer.joined ? "" : " (not joined)"}`],
  ]
  byId("meta").replaceChildren(
    ...items.map(([term, value]) => el("div", {}, el("dt", { text: term }), el("dd", { text: value }))),
  )
  byId("updated").textContent = offline
    ? `last answer ${clock(view.answeredAt)}`
    : `updated ${clock(s.now)}${view.paused ? " (paused)" : ""}`
}

const renderBanner = (s) => {
  const banner = byId("banner")
  const lines = []
  if (view.failingSince !== undefined) {
    banner.className = "banner offline"
    lines.push(
      `No answer from the service for ${duration((Date.now() - view.failingSince) / 1000)} (${view.failure}); showing its last answer, from ${clock(view.answeredAt)}.`,
    )
  } else {
    banner.className = "banner"
    for (const p of s.partitions.filter((x) => x.stalled)) {
      lines.push(
        `Partition ${p.partition} stalled for ${duration((s.now - p.stalledSince) / 1000)}: ${p.stall.what} keeps failing (${p.stall.retries} retries); nothing is committed until it is written.`,
      )
    }
  }
  banner.hidden = lines.length === 0
  banner.replaceChildren(...lines.map((text) => el("p", { text })))
}

const render = () => {
  const s = view.latest
  if (s === undefined) return
  renderHeader(s)
  renderBanner(s)
  if (view.paused) return
  renderDag(s)
  renderChart(s)
  renderPartitions(s)
  renderReasons(s)
  renderSettings(s)
}

// --- polling ----------------------------------------------------------------------------------

const poll = async () => {
  const controller = new AbortController()
  const timer = setTimeout(() => controller.abort(), timeoutMs)
  try {
    const response = await fetch("status.json", { cache: "no-store", signal: controller.signal })
    if (!response.ok) throw new Error(`HTTP ${response.status}`)
    view.latest = await response.json()
    view.answeredAt = Date.now()
    view.failingSince = undefined
  } catch (error) {
    if (view.failingSince === undefined) view.failingSince = Date.now()
    view.failure =
      error instanceof Error && error.name === "AbortError" ? "timed out" : String(error.message ?? error)
  } finally {
    clearTimeout(timer)
  }
  if (view.latest === undefined) {
    const pill = byId("state")
    pill.className = "pill pill-offline"
    pill.dataset.state = "offline"
    pill.textContent = "no answer"
  } else {
    render()
  }
  setTimeout(poll, document.hidden ? hiddenPollMs : pollMs)
}

byId("pause").addEventListener("click", (event) => {
  view.paused = !view.paused
  event.currentTarget.setAttribute("aria-pressed", String(view.paused))
  event.currentTarget.textContent = view.paused ? "Resume updates" : "Pause updates"
  render()
})

window.addEventListener("resize", () => {
  if (view.latest !== undefined && !view.paused) {
    renderChart(view.latest)
    drawEdges(view.latest)
  }
})

poll()
