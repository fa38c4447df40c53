/**
 * Summaries of what node --cpu-prof and the probes of this folder wrote during a benchmark run
 * (see bench/investigate/README.md):
 *   profile FILE.cpuprofile SERVICE-DIR [SKIP-SECONDS]  CPU self time by stage, module and function
 *   memory MEMORY.jsonl   per process, what its largest RSS sample (MemoryProbe) is made of
 *   io IO.jsonl           per process, its MongoDB writes and Kafka requests (IoProbe) by operation
 */
import { readFileSync } from "node:fs"
import { resolve } from "node:path"
import { percentiles } from "../e2e/Stats.js"
import { summarizeProfile } from "./Profile.js"

const usage = `usage: npx tsx bench/investigate/summarize.ts profile FILE.cpuprofile SERVICE-DIR [SKIP-SECONDS]
       npx tsx bench/investigate/summarize.ts memory MEMORY.jsonl
       npx tsx bench/investigate/summarize.ts io IO.jsonl`

const pct = (n: number) => `${(n * 100).toFixed(1)}%`.padStart(7)
const mb = (bytes: number) => `${(bytes / 1_048_576).toFixed(0)} MB`
const ms = (n: number) => `${Math.round(n)}`

interface MemorySample {
  readonly pid: number
  readonly rss: number
  readonly heapTotal: number
  readonly heapUsed: number
  readonly external: number
  readonly arrayBuffers: number
  readonly spaces: Readonly<Record<string, number>>
}

interface Call {
  readonly pid: number
  readonly op: string
  readonly start: number
  readonly ms: number
}

/** A probe's JSON lines, grouped by the process that wrote them, in the order of their first line. */
const byProcess = <A extends { readonly pid: number }>(file: string): Map<number, A[]> => {
  const out = new Map<number, A[]>()
  for (const line of readFileSync(file, "utf8").split("\n")) {
    if (line === "") continue
    const entry = JSON.parse(line) as A
    const list = out.get(entry.pid) ?? []
    list.push(entry)
    out.set(entry.pid, list)
  }
  return out
}

const profile = (file: string, serviceDir: string, skip: number): void => {
  const p = summarizeProfile(file, resolve(serviceDir), skip)
  console.log(
    `busy ${p.busySeconds.toFixed(1)} of ${p.sampledSeconds.toFixed(1)} s sampled (the first ${p.skippedSeconds} s left out), by stage:`,
  )
  for (const s of p.stages) console.log(`${pct(s.share)}  ${s.name}`)
  console.log("top modules by self time:")
  for (const m of p.modules.slice(0, 10)) console.log(`${pct(m.share)}  ${m.name}`)
  console.log("top functions by self time:")
  for (const f of p.functions.slice(0, 15)) console.log(`${pct(f.share)}  ${f.name}`)
}

const memory = (file: string): void => {
  for (const [pid, samples] of byProcess<MemorySample>(file)) {
    const m = samples.reduce((a, b) => (b.rss > a.rss ? b : a))
    const space = (name: string) => mb(m.spaces[name] ?? 0)
    console.log(
      `pid ${pid}, largest of ${samples.length} samples: RSS ${mb(m.rss)} = V8 heap ${mb(m.heapTotal)} (live ${mb(m.heapUsed)}; new space ${space("new_space")}, old space ${space("old_space")}, code ${space("code_space")})` +
        ` + other ${mb(m.rss - m.heapTotal)} (external ${mb(m.external)}, of which array buffers ${mb(m.arrayBuffers)})`,
    )
  }
}

const io = (file: string): void => {
  for (const [pid, calls] of byProcess<Call>(file)) {
    const first = Math.min(...calls.map((c) => c.start))
    const seconds = Math.max(1, (Math.max(...calls.map((c) => c.start)) - first) / 1000)
    console.log(
      `pid ${pid}: ${calls.length} calls in ${seconds.toFixed(0)} s; ms p50 / p99 / max, calls per second:`,
    )
    const byOp = new Map<string, number[]>()
    for (const c of calls) byOp.set(c.op, [...(byOp.get(c.op) ?? []), c.ms])
    const ops = [...byOp]
      .map(([op, list]) => ({ op, ...percentiles(list) }))
      .sort((a, b) => b.count - a.count)
    for (const o of ops) {
      const figures = `${ms(o.p50)} / ${ms(o.p99)} / ${ms(o.max)}`
      console.log(`  ${o.op.padEnd(36)}${figures.padStart(16)}   ${(o.count / seconds).toFixed(0)}/s`)
    }
    // A fetch waits for data by design: it is left out of the slowest calls.
    const slowest = calls.filter((c) => !c.op.endsWith(" Fetch")).sort((a, b) => b.ms - a.ms)
    for (const c of slowest.slice(0, 5))
      console.log(
        `  slow: ${c.op}, ${ms(c.ms)} ms, ${((c.start - first) / 1000).toFixed(1)} s after its first call`,
      )
  }
}

const [what, file, ...rest] = process.argv.slice(2)
if (what === "profile" && file !== undefined && rest[0] !== undefined) {
  profile(file, rest[0], Number(rest[1] ?? 0))
} else if (what === "memory" && file !== undefined) {
  memory(file)
} else if (what === "io" && file !== undefined) {
  io(file)
} else {
  console.error(usage)
  process.exitCode = 2
}
