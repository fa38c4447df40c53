/**
 * The table printed on stdout: the headline figures, ratios and targets of a run, the checks,
 * then what the CPU did: cores busy per process, and CPU time per record per process. Every
 * figure is in the JSON too.
 */
import type { E2eResult, LatencyFigures } from "./Result.js"
import { type Summary, summarize } from "./Stats.js"

const int = (n: number) => Math.round(n).toLocaleString("en-US")
const pct = (n: number) => `${(n * 100).toFixed(1)}%`
const mb = (bytes: number) => `${(bytes / 1_048_576).toFixed(0)} MB`
const ms = (n: number) => (Number.isNaN(n) ? "-" : `${Math.round(n)}`)
const pad = (s: string, n: number) => s.padEnd(n)
const lpad = (s: string, n: number) => s.padStart(n)

const row = (label: string, s: Summary, unit: string) =>
  `${pad(label, 52)}${lpad(int(s.median), 9)}${lpad(pct(s.spread), 9)}   ${pad(`${int(s.min)} .. ${int(s.max)}`, 20)}${unit}`

export const renderReport = (r: E2eResult, jsonFile: string): string => {
  const out: string[] = []
  const say = (line = "") => out.push(line)
  const s = r.settings
  const v = r.versions
  say(`End-to-end benchmark ${r.run} (${Math.round(r.durationSeconds)} s)`)
  say(
    `N = ${int(s.records)} records (generator, mixed: ${int(r.dataset.kinds.valid)} valid, ${int(r.dataset.kinds.invalid)} invalid, ${int(r.dataset.kinds.duplicate)} duplicates` +
      `${s.farDuplicateLimit === null ? "" : `; ${int(r.dataset.leftOutFarDuplicates)} duplicates further back than ${int(s.farDuplicateLimit)} records left out`}), ` +
      `batch size ${s.batchSize}, ${s.partitions} partitions, ${s.reps} repetitions`,
  )
  say(
    `machine: ${r.machine.cores} cores (${r.machine.cpuModel}), ${(r.machine.memoryBytes / 2 ** 30).toFixed(1)} GiB, Linux ${r.machine.kernel}; ${r.busyCoresBefore.toFixed(2)} cores busy before the run`,
  )
  say(
    `versions: node ${v.node}; ${v.kafka}; ${v.mongodb}; kafkajs ${v.kafkajs}; mongodb driver ${v.mongodbDriver}; effect ${v.effect}; commit ${v.commit.slice(0, 10)}${v.srcChanges.length > 0 ? ` + ${v.srcChanges.length} uncommitted change(s) in src/config` : ""}`,
  )
  if (s.serviceNodeFlags.length > 1) say(`pipeline node flags: ${s.serviceNodeFlags.join(" ")}`)
  const extra = Object.entries(r.serviceEnvExtra)
  if (extra.length > 0) say(`pipeline extra environment: ${extra.map(([k, v]) => `${k}=${v}`).join(" ")}`)
  say()
  say(
    `${pad("figure (median of the repetitions)", 52)}${lpad("median", 9)}${lpad("spread", 9)}   ${pad("min .. max", 20)}unit`,
  )
  say(row("A  client ceiling: kafkajs consume -> produce", r.baselineA.summary, "records/s"))
  say(row("B  sink ceiling: insertMany, E11000 -> replaceOne", r.baselineB.summary, "documents/s"))
  say(row("C  bare pipeline: consume, MongoDB || produce, commit", r.baselineC.summary, "records/s"))
  say(
    row(
      "   of which replaced by _id after E11000",
      summarize(r.baselineC.reps.map((x) => x.replaced)),
      "documents",
    ),
  )
  say(row("P  pipeline: full DAG, both sinks, dead letters", r.pipeline.summary, "records/s"))
  say(row("   of which MongoDB documents written", r.pipeline.documentsPerSecond, "documents/s"))
  say(`${pad("   P / A", 52)}${lpad(r.ratios.pipelineOverA.toFixed(2), 9)}`)
  say(`${pad("   P / B (records/s over documents/s)", 52)}${lpad(r.ratios.pipelineOverB.toFixed(2), 9)}`)
  say(`${pad("   P documents/s / B", 52)}${lpad(r.ratios.pipelineDocumentsOverB.toFixed(2), 9)}`)
  say(`${pad("   P / min(A, B)", 52)}${lpad(r.ratios.pipelineOverMin.toFixed(2), 9)}`)
  say(`${pad("   P / C", 52)}${lpad(r.ratios.pipelineOverC.toFixed(2), 9)}`)
  if (r.latency !== null) {
    const l = r.latency
    const lat = (name: string, p: LatencyFigures) =>
      `${pad(name, 52)}${lpad(`${ms(p.p50.median)} / ${ms(p.p95.median)} / ${ms(p.p99.median)} / ${ms(p.max.median)}`, 22)} ms   (p99 ${ms(p.p99.min)} .. ${ms(p.p99.max)})`
    say()
    say(
      `latency at ${int(l.targetRate)} records/s (half of P), ${s.latencySeconds} s after ${s.latencyWarmupSeconds} s warm-up, ${l.reps.length} run(s); achieved ${l.reps.map((x) => int(x.achievedRate)).join(", ")} records/s`,
    )
    say(`${pad("", 52)}${lpad("p50 / p95 / p99 / max", 22)}`)
    say(lat("   produced -> MongoDB write acknowledged", l.mongoAck))
    say(lat("   produced -> sink topic appended (proxy)", l.sinkAppend))
    say(
      `${pad("   records measured / acknowledged by MongoDB", 52)}${lpad(l.reps.map((x) => `${int(x.measured)}/${int(x.mongoAck.count)}`).join(", "), 22)}`,
    )
  }
  say()
  say(
    `peak RSS of the pipeline (VmHWM): drain ${mb(r.memory.drainPeakRssBytes.median)} (${mb(r.memory.drainPeakRssBytes.min)} .. ${mb(r.memory.drainPeakRssBytes.max)})` +
      (r.memory.latencyPeakRssBytes === null
        ? ""
        : `, latency ${mb(r.memory.latencyPeakRssBytes.median)} (${mb(r.memory.latencyPeakRssBytes.min)} .. ${mb(r.memory.latencyPeakRssBytes.max)})`),
  )
  const p0 = r.pipeline.reps
  say(
    `pipeline start to ready ${p0.map((p) => p.startupSeconds.toFixed(1)).join(", ")} s; SIGTERM to exit ${p0.map((p) => `${p.shutdown.seconds.toFixed(1)} s (code ${p.shutdown.code})`).join(", ")}`,
  )
  say()
  say("targets (the compass, not a test):")
  for (const t of r.targets) say(`  ${t.met ? "met   " : "MISSED"} ${pad(t.name, 40)} ${t.target}`)
  if (r.checks.length > 0) {
    say()
    say("checks:")
    for (const c of r.checks) say(`  ${c}`)
  }
  say()
  const names = [
    "pipeline",
    "baselineA",
    "baselineB",
    "baselineC",
    "kafka",
    "ferretdb",
    "bench",
    "other",
    "machine",
  ]
  say(`CPU, cores busy during the measured window (median; the machine has ${r.machine.cores}):`)
  say(`  ${pad("", 12)}${names.map((n) => lpad(n, 10)).join("")}`)
  for (const [phase, cores] of Object.entries(r.cpu)) {
    say(
      `  ${pad(phase, 12)}${names.map((n) => lpad(cores[n] === undefined ? "" : cores[n].toFixed(2), 10)).join("")}`,
    )
  }
  say()
  const measured: Readonly<Record<string, string>> = {
    A: "baselineA",
    B: "baselineB",
    C: "baselineC",
    P: "pipeline",
  }
  const us = (n: number | undefined) => (n === undefined || Number.isNaN(n) ? "-" : n.toFixed(1))
  say("CPU time per record, µs (user + system over the measured window / N records; median):")
  say(
    `  ${pad("", 12)}${["process", "kafka", "ferretdb", "the three", "machine"].map((n) => lpad(n, 10)).join("")}`,
  )
  for (const [phase, per] of Object.entries(r.cpuPerRecord)) {
    const own = per[measured[phase] ?? ""]
    const three = [own, per.kafka, per.ferretdb].reduce<number>((sum, x) => sum + (x ?? 0), 0)
    say(
      `  ${pad(`${phase} ${measured[phase] ?? ""}`, 12)}${[own, per.kafka, per.ferretdb, three, per.machine].map((x) => lpad(us(x), 10)).join("")}`,
    )
  }
  say()
  say(`every figure: ${jsonFile}`)
  return out.join("\n")
}
