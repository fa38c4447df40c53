/**
 * Steps 2 to 5, one repetition each: baseline A (kafkajs pass-through), baseline B (bare
 * MongoDB writes), baseline C (the bare pipeline: consume, MongoDB and the sink topic, commit)
 * and the pipeline draining the preloaded topic with a fresh consumer group and database. Each
 * runs in its own node process; the clock runs from the moment the consumer is in its group (or
 * the first write) to the moment the last offset is committed (or the last write is
 * acknowledged). CPU use of every process involved is read over the same window.
 */
import { join } from "node:path"
import type { BaselineAConfig } from "./BaselineA.js"
import type { BaselineBConfig } from "./BaselineB.js"
import type { BaselineCConfig } from "./BaselineC.js"
import { Child } from "./Child.js"
import { shippedSpec, sinkWriteConcern } from "./Dataset.js"
import { brokers, mongoUri } from "./Infra.js"
import { account, type ServiceAccount, scrape } from "./Metrics.js"
import type { Preloaded } from "./Preload.js"
import { type CpuSnapshot, coresUsed, cpuPerRecord, cpuSnapshot } from "./Proc.js"
import type { Run } from "./Run.js"
import { startService } from "./Service.js"

export const PARTITIONS_CONCURRENCY = 3
const COLLECTION = "orders"

export interface Repetition {
  readonly label: string
  readonly seconds: number
  /** Records/s (A, pipeline) or documents/s (B). */
  readonly rate: number
  readonly items: number
  /** Cores kept busy during the window, per process (see Proc.coresUsed). */
  readonly cores: Readonly<Record<string, number>>
  /**
   * Microseconds of CPU time per record of the source topic, per process (see Proc.cpuPerRecord).
   * B too is divided by the records whose documents it writes, not by its documents.
   */
  readonly cpuPerRecord: Readonly<Record<string, number>>
}

/** A drain of the source topic by a bare consumer group (baselines A and C). */
export interface DrainRepetition extends Repetition {
  /** Messages on the sink topic after the drain. */
  readonly sinkMessages: number
  /** Partitions whose committed offset is not the topic's end after the drain, as "p: committed/end". */
  readonly uncommitted: ReadonlyArray<string>
}

export interface BareRepetition extends DrainRepetition {
  /** Documents in MongoDB after the drain. */
  readonly documents: number
  readonly inserted: number
  readonly replaced: number
}

export interface PipelineRepetition extends Repetition {
  readonly peakRssBytes: number
  readonly startupSeconds: number
  readonly shutdown: { readonly code: number | null; readonly seconds: number; readonly killed: boolean }
  readonly documents: number
  readonly service: ServiceAccount
}

export interface SinkRepetition extends Repetition {
  readonly inserted: number
  readonly replaced: number
}

const here = import.meta.dirname
const tsxChild = (file: string) => [
  "--disable-warning=TimeoutNegativeWarning",
  "--import",
  "tsx",
  join(here, file),
]
const drainTimeoutMs = (records: number) => 120_000 + records * 10

const pids = (run: Run, name: string, pid: number) => ({
  [name]: pid,
  kafka: run.stack.kafka,
  ferretdb: run.stack.ferretdb,
  bench: process.pid,
})

/** CPU figures of a window: cores busy and CPU time per record, per process. */
const cpuOf = (before: CpuSnapshot, after: CpuSnapshot, records: number) => ({
  cores: coresUsed(before, after),
  cpuPerRecord: cpuPerRecord(before, after, records),
})

/** What a bare drain left: the sink topic's messages and the partitions not committed to their end. */
const drained = async (run: Run, source: Preloaded, group: string, target: string) => {
  const committed = await run.cluster.committed(group, source.topic)
  const uncommitted = [...source.ends]
    .filter(([p, end]) => (committed.get(p) ?? -1n) !== end)
    .map(([p, end]) => `${p}: ${committed.get(p) ?? -1n}/${end}`)
  return { sinkMessages: await run.cluster.messageCount(target), uncommitted }
}

export const baselineA = async (run: Run, source: Preloaded, rep: number): Promise<DrainRepetition> => {
  const label = `a${rep}`
  const target = run.topic(`${label}.out`)
  await run.cluster.createTopic(target, source.ends.size)
  const config: BaselineAConfig = {
    brokers,
    source: source.topic,
    target,
    group: run.group(label),
    batchSize: run.options.batchSize,
    partitionsConcurrency: PARTITIONS_CONCURRENCY,
    expected: source.records,
  }
  const child = new Child(
    "baseline A",
    tsxChild("BaselineA.ts"),
    { BENCH_CONFIG: JSON.stringify(config) },
    log(run, label),
  )
  const joined = await child.event("joined", 60_000)
  const before = cpuSnapshot(pids(run, "baselineA", child.pid))
  const done = await child.event("done", drainTimeoutMs(source.records))
  const after = cpuSnapshot(pids(run, "baselineA", child.pid))
  await child.stop()
  const seconds = (done.at - joined.at) / 1000
  return {
    label,
    seconds,
    rate: source.records / seconds,
    items: source.records,
    ...cpuOf(before, after, source.records),
    ...(await drained(run, source, config.group, target)),
  }
}

export const baselineB = async (run: Run, rep: number): Promise<SinkRepetition> => {
  const label = `b${rep}`
  const database = run.database(label)
  const config: BaselineBConfig = {
    uri: mongoUri,
    database,
    collection: COLLECTION,
    seed: run.options.seed,
    records: run.options.records,
    farLimit: run.farLimit,
    batchSize: run.options.batchSize,
    lanes: PARTITIONS_CONCURRENCY,
    writeConcern: sinkWriteConcern(shippedSpec()),
  }
  const child = new Child(
    "baseline B",
    tsxChild("BaselineB.ts"),
    { BENCH_CONFIG: JSON.stringify(config) },
    log(run, label),
  )
  try {
    const start = await child.event("start", 300_000)
    const before = cpuSnapshot(pids(run, "baselineB", child.pid))
    const done = await child.event("done", drainTimeoutMs(run.options.records) * 10)
    const after = cpuSnapshot(pids(run, "baselineB", child.pid))
    await child.stop()
    const documents = Number(done.data.documents)
    const seconds = (done.at - start.at) / 1000
    return {
      label,
      seconds,
      rate: documents / seconds,
      items: documents,
      inserted: Number(done.data.inserted),
      replaced: Number(done.data.replaced),
      ...cpuOf(before, after, run.options.records),
    }
  } finally {
    if (child.running) await child.stop(5_000)
    await run.mongo.drop(database)
  }
}

export const baselineC = async (run: Run, source: Preloaded, rep: number): Promise<BareRepetition> => {
  const label = `c${rep}`
  const target = run.topic(`${label}.out`)
  const database = run.database(label)
  await run.cluster.createTopic(target, source.ends.size)
  const config: BaselineCConfig = {
    brokers,
    source: source.topic,
    target,
    group: run.group(label),
    batchSize: run.options.batchSize,
    partitionsConcurrency: PARTITIONS_CONCURRENCY,
    expected: source.records,
    uri: mongoUri,
    database,
    collection: COLLECTION,
    writeConcern: sinkWriteConcern(shippedSpec()),
  }
  const child = new Child(
    "baseline C",
    tsxChild("BaselineC.ts"),
    { BENCH_CONFIG: JSON.stringify(config) },
    log(run, label),
  )
  try {
    const joined = await child.event("joined", 60_000)
    const before = cpuSnapshot(pids(run, "baselineC", child.pid))
    const done = await child.event("done", drainTimeoutMs(source.records))
    const after = cpuSnapshot(pids(run, "baselineC", child.pid))
    await child.stop()
    const seconds = (done.at - joined.at) / 1000
    return {
      label,
      seconds,
      rate: source.records / seconds,
      items: source.records,
      ...cpuOf(before, after, source.records),
      ...(await drained(run, source, config.group, target)),
      documents: await run.mongo.count(database, COLLECTION),
      inserted: Number(done.data.inserted),
      replaced: Number(done.data.replaced),
    }
  } finally {
    if (child.running) await child.stop(5_000)
    await run.mongo.drop(database)
  }
}

/** One drain of the preloaded topic by the service. */
export const pipelineDrain = async (
  run: Run,
  main: string,
  source: Preloaded,
  label: string,
  /** Settings of this drain beside --service-env (the delivery of --compare-delivery). */
  env: Readonly<Record<string, string>> = {},
): Promise<PipelineRepetition> => {
  const settings = {
    source: source.topic,
    sink: run.topic(`${label}.sink`),
    dlq: run.topic(`${label}.dlq`),
    group: run.group(label),
    database: run.database(label),
    collection: COLLECTION,
    batchSize: run.options.batchSize,
  }
  const service = await startService({
    main,
    settings,
    logFile: log(run, label),
    nodeFlags: run.options.serviceFlags,
    extraEnv: { ...run.options.serviceEnv, ...env },
  })
  const { child } = service
  try {
    const before = cpuSnapshot(pids(run, "pipeline", child.pid))
    const doneAt = await run.cluster.waitForCommit(
      settings.group,
      source.topic,
      source.ends,
      drainTimeoutMs(source.records),
    )
    const after = cpuSnapshot(pids(run, "pipeline", child.pid))
    const serviceAccount = account(await scrape(service.port))
    const peakRssBytes = child.peakRssBytes()
    const exit = await child.stop()
    const documents = await run.mongo.count(settings.database, COLLECTION)
    const seconds = (doneAt - service.readyAt) / 1000
    return {
      label,
      seconds,
      rate: source.records / seconds,
      items: source.records,
      ...cpuOf(before, after, source.records),
      peakRssBytes,
      startupSeconds: service.startupSeconds,
      shutdown: { code: exit.code, seconds: exit.seconds, killed: exit.killed },
      documents,
      service: serviceAccount,
    }
  } finally {
    if (child.running) await child.stop(5_000)
    await run.mongo.drop(settings.database)
  }
}

const log = (run: Run, label: string) => join(run.dir, `${label}.log`)
