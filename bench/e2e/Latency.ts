/**
 * Step 5: the pipeline under a steady load (half its measured drain rate) on a fresh topic,
 * group and database. Each message carries its send time as its Kafka timestamp ("produced").
 * Two end points are read for every record that reaches MongoDB:
 * - MongoDB acknowledged: the moment the driver in the service returned the server's write
 *   acknowledgement, noted by AckProbe (preloaded into the service with --import);
 * - sink topic appended: the broker's LogAppendTime of the record's message on the sink topic
 *   (written in the same parallel step as MongoDB), read back by a consumer here.
 * IoProbe, preloaded too, times the service's MongoDB writes and Kafka requests, so that a slow
 * second can be pinned on the server that was slow. Records first sent during the warm-up are
 * left out.
 */
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { type Sent, steadyLoad, watchSink } from "./Load.js"
import { account, type ServiceAccount, scrape } from "./Metrics.js"
import { coresUsed, cpuSnapshot } from "./Proc.js"
import type { Run } from "./Run.js"
import { startService } from "./Service.js"
import { type Percentiles, percentiles } from "./Stats.js"

export interface LatencyRepetition {
  readonly label: string
  readonly targetRate: number
  readonly achievedRate: number
  /** Records sent in the measured window. */
  readonly measured: number
  /** Generated duplicates left out of the load (see Dataset.benchRecords). */
  readonly leftOut: number
  readonly mongoAck: Percentiles
  readonly sinkAppend: Percentiles
  /** Per second of the measured window (by send time): how many, median and worst latency to MongoDB. */
  readonly timeline: ReadonlyArray<{
    readonly second: number
    readonly count: number
    readonly p50: number
    readonly max: number
  }>
  /** The service's I/O as IoProbe timed it: per operation, and the slowest calls (seconds from the measured start). */
  readonly io: IoSummary
  readonly peakRssBytes: number
  readonly cores: Readonly<Record<string, number>>
  readonly service: ServiceAccount
}

const PROBE = join(import.meta.dirname, "AckProbe.ts")
const IO_PROBE = join(import.meta.dirname, "IoProbe.ts")

export interface IoSummary {
  readonly operations: ReadonlyArray<{ readonly op: string } & Percentiles>
  readonly slowest: ReadonlyArray<{ readonly op: string; readonly second: number; readonly ms: number }>
}

/** `<_id> <epoch ms>` lines -> the first acknowledgement of each document. */
const readAcks = (file: string): Map<string, number> => {
  const acks = new Map<string, number>()
  let text = ""
  try {
    text = readFileSync(file, "utf8")
  } catch {
    return acks
  }
  for (const line of text.split("\n")) {
    const space = line.lastIndexOf(" ")
    if (space <= 0) continue
    const id = line.slice(0, space)
    const at = Number(line.slice(space + 1))
    const known = acks.get(id)
    if (known === undefined || at < known) acks.set(id, at)
  }
  return acks
}

const summarizeIo = (file: string, from: number, to: number): IoSummary => {
  const calls: Array<{ op: string; start: number; ms: number }> = []
  try {
    for (const line of readFileSync(file, "utf8").split("\n")) {
      if (line === "") continue
      const c = JSON.parse(line) as { op: string; start: number; ms: number }
      if (c.start >= from && c.start <= to) calls.push(c)
    }
  } catch {
    return { operations: [], slowest: [] }
  }
  const byOp = new Map<string, number[]>()
  for (const c of calls) {
    const list = byOp.get(c.op) ?? []
    list.push(c.ms)
    byOp.set(c.op, list)
  }
  return {
    operations: [...byOp].map(([op, ms]) => ({ op, ...percentiles(ms) })).sort((a, b) => b.count - a.count),
    slowest: calls
      .filter((c) => !c.op.endsWith(" Fetch")) // a fetch waits for data by design
      .sort((a, b) => b.ms - a.ms)
      .slice(0, 8)
      .map((c) => ({ op: c.op, second: (c.start - from) / 1000, ms: c.ms })),
  }
}

/** [send time, latency] of every measured record that reached `done`. */
const latencies = (
  first: ReadonlyMap<string, Sent>,
  done: ReadonlyMap<string, number>,
): Array<[number, number]> => {
  const out: Array<[number, number]> = []
  for (const [key, sent] of first) {
    if (!sent.measured) continue
    const at = done.get(key)
    if (at !== undefined) out.push([sent.at, at - sent.at])
  }
  return out
}

const timeline = (samples: ReadonlyArray<[number, number]>): LatencyRepetition["timeline"] => {
  if (samples.length === 0) return []
  let start = Number.POSITIVE_INFINITY
  for (const [at] of samples) start = Math.min(start, at)
  const seconds = new Map<number, number[]>()
  for (const [at, latency] of samples) {
    const second = Math.floor((at - start) / 1000)
    const list = seconds.get(second) ?? []
    list.push(latency)
    seconds.set(second, list)
  }
  return [...seconds]
    .sort((a, b) => a[0] - b[0])
    .map(([second, list]) => {
      const p = percentiles(list)
      return { second, count: p.count, p50: p.p50, max: p.max }
    })
}

export const latencyRun = async (
  run: Run,
  main: string,
  rate: number,
  rep: number,
): Promise<LatencyRepetition> => {
  const label = `lat${rep}`
  const partitions = 3
  const source = run.topic(label)
  const sink = run.topic(`${label}.sink`)
  await run.cluster.createTopic(source, partitions)
  await run.cluster.createTopic(sink, partitions, { "message.timestamp.type": "LogAppendTime" })
  const settings = {
    source,
    sink,
    dlq: run.topic(`${label}.dlq`),
    group: run.group(label),
    database: run.database(label),
    collection: "orders",
    batchSize: run.options.batchSize,
  }
  const ackFile = join(run.dir, `${label}.acks`)
  const ioFile = join(run.dir, `${label}.io.jsonl`)
  const service = await startService({
    main,
    settings,
    logFile: join(run.dir, `${label}.log`),
    imports: [PROBE, IO_PROBE],
    nodeFlags: run.options.serviceFlags,
    extraEnv: { ...run.options.serviceEnv, BENCH_ACK_FILE: ackFile, BENCH_IO_FILE: ioFile },
  })
  const { child } = service
  const watcher = await watchSink(sink, run.group(`${label}.watch`))
  try {
    const snapshot = () =>
      cpuSnapshot({
        pipeline: child.pid,
        kafka: run.stack.kafka,
        ferretdb: run.stack.ferretdb,
        bench: process.pid,
      })
    const load = await steadyLoad(run, source, rate, snapshot)
    const ends = await run.cluster.endOffsets(source)
    await run.cluster.waitForCommit(settings.group, source, ends, 180_000)
    await watcher.caughtUp(await run.cluster.messageCount(sink), 30_000)
    const serviceAccount = account(await scrape(service.port))
    const peak = child.peakMemory()
    await child.stop()
    const acks = readAcks(ackFile)
    const toMongo = latencies(load.first, acks)
    return {
      label,
      targetRate: rate,
      achievedRate: load.measured / run.options.latencySeconds,
      measured: load.measured,
      leftOut: load.leftOut,
      mongoAck: percentiles(toMongo.map(([, l]) => l)),
      sinkAppend: percentiles(latencies(load.first, watcher.appended).map(([, l]) => l)),
      timeline: timeline(toMongo),
      io: summarizeIo(ioFile, load.measuredFrom, load.measuredFrom + run.options.latencySeconds * 1000),
      peakRssBytes: peak.hwmBytes,
      cores: coresUsed(load.before, load.after),
      service: serviceAccount,
    }
  } finally {
    await watcher.stop()
    if (child.running) await child.stop(5_000)
    await run.mongo.drop(settings.database)
  }
}
