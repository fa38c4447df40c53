/**
 * The end-to-end benchmark: against the local stack, in one run,
 *   1. preload N records of the generator's mixed stream into a fresh 3-partition topic;
 *   2. baseline A, the client ceiling: bare kafkajs consume -> produce;
 *   3. baseline B, the sink ceiling: bare MongoDB writes of the same documents, as the sink writes them;
 *   4. baseline C, the bare pipeline: bare kafkajs and mongodb clients, consume -> MongoDB || sink
 *      topic -> commit, no transforms;
 *   5. the pipeline (full default DAG, both sinks, dead letters) draining the topic, fresh group;
 *   6. latency at half the pipeline's drain rate, produced -> MongoDB acknowledged;
 *   7. peak resident memory of the pipeline during 5 and 6.
 * Throughput repetitions are interleaved (A, B, C, P, A, B, C, P, ...) so that drift of the
 * machine touches all four alike. Prints a table on stdout (progress on stderr) and writes every
 * figure as JSON. Not part of `npm test`.
 */
import { writeFileSync } from "node:fs"
import { join, relative } from "node:path"
import { root, versions } from "./e2e/Infra.js"
import { type LatencyRepetition, latencyRun } from "./e2e/Latency.js"
import { type Options, parseOptions, UsageError, usage } from "./e2e/Options.js"
import { preload } from "./e2e/Preload.js"
import { machine, machineCpu } from "./e2e/Proc.js"
import { renderReport } from "./e2e/Report.js"
import { assemble, type E2eResult } from "./e2e/Result.js"
import { type Run, withRun } from "./e2e/Run.js"
import { buildService } from "./e2e/Service.js"
import { summarize } from "./e2e/Stats.js"
import {
  type BareRepetition,
  baselineA,
  baselineB,
  baselineC,
  type DrainRepetition,
  type PipelineRepetition,
  pipelineDrain,
  type SinkRepetition,
} from "./e2e/Throughput.js"

const PARTITIONS = 3
const say = (line: string) => process.stderr.write(`bench: ${line}\n`)
const int = (n: number) => Math.round(n).toLocaleString("en-US")

/** Cores the whole machine kept busy over `ms`, before anything of the benchmark runs. */
const busyCores = async (ms: number): Promise<number> => {
  const before = machineCpu()
  await new Promise((r) => setTimeout(r, ms))
  return (machineCpu().busy - before.busy) / (ms / 1000)
}

/** The at_least_once and exactly_once figures of --compare-delivery, side by side. */
let deliveryComparison:
  | {
      readonly p: ReadonlyArray<PipelineRepetition>
      readonly pOnce: ReadonlyArray<PipelineRepetition>
      readonly lat: ReadonlyArray<LatencyRepetition>
      readonly latOnce: ReadonlyArray<LatencyRepetition>
    }
  | undefined

const deliveryReport = (c: NonNullable<typeof deliveryComparison>): string => {
  const rate = summarize(c.p.map((x) => x.rate)).median
  const rateOnce = summarize(c.pOnce.map((x) => x.rate)).median
  const p99 = c.lat.length === 0 ? undefined : summarize(c.lat.map((x) => x.mongoAck.p99)).median
  const p99Once = c.latOnce.length === 0 ? undefined : summarize(c.latOnce.map((x) => x.mongoAck.p99)).median
  const lines = [
    "",
    "delivery (--compare-delivery; each exactly_once drain and latency run right after its at_least_once one):",
    `   at_least_once  ${int(rate)} records/s${p99 === undefined ? "" : `, p99 ${p99} ms`}`,
    `   exactly_once   ${int(rateOnce)} records/s${p99Once === undefined ? "" : `, p99 ${p99Once} ms`}`,
    `   exactly_once / at_least_once: ${(rateOnce / rate).toFixed(2)} of the records/s${p99 === undefined || p99Once === undefined ? "" : `, ${(p99Once / p99).toFixed(2)} x the p99`}`,
  ]
  return lines.join("\n")
}

const measure = async (run: Run, argv: ReadonlyArray<string>): Promise<E2eResult> => {
  const o = run.options
  const startedAt = new Date()
  const started = performance.now()
  const info = { machine: machine(), versions: await versions(run.mongo) }
  const busyBefore = await busyCores(3_000)
  say(`the machine kept ${busyBefore.toFixed(2)} of ${info.machine.cores} cores busy before the run`)
  if (busyBefore > 0.25)
    say("   it is not idle: expect lower and noisier figures (see the 'other' CPU column)")
  say("building the service from the working tree")
  const main = buildService(join(run.dir, "service"))

  say(`1. preloading ${int(o.records)} records into ${run.id}.source`)
  const source = await preload(run.cluster, run.topic("source"), PARTITIONS, o.seed, o.records, run.farLimit)
  say(
    `   ${(o.records / source.seconds).toFixed(0)} records/s; ${int(source.leftOut)} far duplicates left out`,
  )

  const a: DrainRepetition[] = []
  const b: SinkRepetition[] = []
  const c: BareRepetition[] = []
  const p: PipelineRepetition[] = []
  const exactlyOnce = { KAFKA__DELIVERY: "exactly_once" }
  const pOnce: PipelineRepetition[] = []
  for (let rep = 1; rep <= o.reps; rep++) {
    say(`repetition ${rep}/${o.reps}`)
    a.push(await baselineA(run, source, rep))
    say(`   2. baseline A: ${int(a.at(-1)!.rate)} records/s`)
    b.push(await baselineB(run, rep))
    say(`   3. baseline B: ${int(b.at(-1)!.rate)} documents/s (${int(b.at(-1)!.replaced)} replaced)`)
    c.push(await baselineC(run, source, rep))
    say(`   4. baseline C: ${int(c.at(-1)!.rate)} records/s (${int(c.at(-1)!.replaced)} replaced)`)
    p.push(await pipelineDrain(run, main, source, `p${rep}`))
    say(
      `   5. pipeline:   ${int(p.at(-1)!.rate)} records/s, peak RSS ${(p.at(-1)!.peakRssBytes / 2 ** 20).toFixed(0)} MB`,
    )
    if (o.compareDelivery) {
      pOnce.push(await pipelineDrain(run, main, source, `x${rep}`, exactlyOnce))
      say(`   5'. pipeline, exactly_once: ${int(pOnce.at(-1)!.rate)} records/s`)
    }
  }
  const pipeline = summarize(p.map((x) => x.rate))

  const lat: LatencyRepetition[] = []
  const latOnce: LatencyRepetition[] = []
  const targetRate = Math.max(1, Math.round(pipeline.median / 2))
  if (o.latencySeconds > 0) {
    for (let rep = 1; rep <= o.latencyReps; rep++) {
      say(`6. latency run ${rep}/${o.latencyReps} at ${int(targetRate)} records/s`)
      lat.push(await latencyRun(run, main, targetRate, rep))
      const last = lat.at(-1)!
      say(`   p50 ${last.mongoAck.p50} ms, p99 ${last.mongoAck.p99} ms, max ${last.mongoAck.max} ms`)
      if (o.compareDelivery) {
        latOnce.push(await latencyRun(run, main, targetRate, rep, exactlyOnce, `xlat${rep}`))
        const once = latOnce.at(-1)!
        say(
          `   exactly_once: p50 ${once.mongoAck.p50} ms, p99 ${once.mongoAck.p99} ms, max ${once.mongoAck.max} ms`,
        )
      }
    }
  }
  if (o.compareDelivery) deliveryComparison = { p, pOnce, lat, latOnce }

  return assemble({
    run,
    argv,
    startedAt,
    durationSeconds: (performance.now() - started) / 1000,
    ...info,
    busyCoresBefore: busyBefore,
    source,
    a,
    b,
    c,
    p,
    latency: lat,
    targetRate,
  })
}

/** Runs the benchmark; returns the exit code. */
export const runE2e = async (argv: ReadonlyArray<string>): Promise<number> => {
  let options: Options | "help"
  try {
    options = parseOptions(argv)
  } catch (e) {
    if (!(e instanceof UsageError)) throw e
    process.stderr.write(`${e.message}\n`)
    return 2
  }
  if (options === "help") {
    process.stdout.write(`${usage}\n`)
    return 0
  }
  await withRun(options, async (run) => {
    const result = await measure(run, argv)
    const jsonFile = join(run.dir, "result.json")
    const comparison = deliveryComparison
    writeFileSync(
      jsonFile,
      `${JSON.stringify(comparison === undefined ? result : { ...result, deliveryComparison: comparison }, null, 2)}\n`,
    )
    process.stdout.write(`${renderReport(result, relative(root, jsonFile))}\n`)
    if (comparison !== undefined) process.stdout.write(`${deliveryReport(comparison)}\n`)
  })
  return 0
}
