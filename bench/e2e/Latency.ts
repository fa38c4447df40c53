/**
 * Step 5: the pipeline under a steady load (half its measured drain rate) on a fresh topic,
 * group and database. Each message carries its send time as its Kafka timestamp ("produced").
 * Two end points are read for every record that reaches MongoDB:
 * - MongoDB acknowledged: the moment the driver in the service returned the server's write
 *   acknowledgement, noted by AckProbe (preloaded into the service with --import);
 * - sink topic appended: the broker's LogAppendTime of the record's message on the sink topic
 *   (written in the same parallel step as MongoDB), read back by a consumer here.
 * Records first sent during the warm-up are left out.
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
  readonly peakRssBytes: number
  readonly cores: Readonly<Record<string, number>>
  readonly service: ServiceAccount
}

const PROBE = join(import.meta.dirname, "AckProbe.ts")

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

/** Latency in ms of every measured record that reached `done`. */
const latencies = (first: ReadonlyMap<string, Sent>, done: ReadonlyMap<string, number>): number[] => {
  const out: number[] = []
  for (const [key, sent] of first) {
    if (!sent.measured) continue
    const at = done.get(key)
    if (at !== undefined) out.push(at - sent.at)
  }
  return out
}

export const latencyRun = async (
  run: Run,
  main: string,
  rate: number,
  rep: number,
  /** Settings of this run beside --service-env (the delivery of --compare-delivery). */
  env: Readonly<Record<string, string>> = {},
  label = `lat${rep}`,
): Promise<LatencyRepetition> => {
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
  const service = await startService({
    main,
    settings,
    logFile: join(run.dir, `${label}.log`),
    imports: [PROBE],
    nodeFlags: run.options.serviceFlags,
    extraEnv: { ...run.options.serviceEnv, ...env, BENCH_ACK_FILE: ackFile },
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
    const peakRssBytes = child.peakRssBytes()
    await child.stop()
    return {
      label,
      targetRate: rate,
      achievedRate: load.measured / run.options.latencySeconds,
      measured: load.measured,
      leftOut: load.leftOut,
      mongoAck: percentiles(latencies(load.first, readAcks(ackFile))),
      sinkAppend: percentiles(latencies(load.first, watcher.appended)),
      peakRssBytes,
      cores: coresUsed(load.before, load.after),
      service: serviceAccount,
    }
  } finally {
    await watcher.stop()
    if (child.running) await child.stop(5_000)
    await run.mongo.drop(settings.database)
  }
}
