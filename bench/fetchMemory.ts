/**
 * Memory of fetches of small messages: `npm run bench -- fetch-memory [options]`.
 *
 * 1. In this process, no broker: one partition's share of the topic as record batches made by
 *    kafkajs' own encoder with the chosen codec, decoded by the patched kafkajs fetch decoder
 *    (fetch/v4/decodeMessages.js) with its bound off and at the service's bounds. What the
 *    decoded records hold in the V8 heap and outside it (the decompressed batches), per record,
 *    after a full GC, next to what the patch counts for them (400 + key + value bytes).
 * 2. Against the local stack: N messages of about 60 bytes (JSON objects the shipped pipeline
 *    dead-letters: they lack the customer's name and e-mail) preloaded, compressed, into a fresh
 *    3-partition topic, then drained by the service (`node main.js` compiled from the working
 *    tree, its own heap limits) three times, each into fresh topics, group and database:
 *    (a) the defaults, (b) the fetch sizes before the bound (KAFKA__FETCH_MAX_BYTES_PER_PARTITION
 *    = 8 MiB, KAFKA__FETCH_MAX_BYTES = 24 MiB), (c) those sizes with the decode bound held off by
 *    a module preloaded into the service (`--import`): how the service decoded before the patch.
 *    No setting turns the bound off; (c) is the benchmark's doing. Peak RSS (VmHWM); peak heap,
 *    live heap (after a major GC), external memory and the consumer's fetches (sampled every
 *    50 ms inside the service by a preloaded module); how it ended; records/s.
 *
 * Not part of `npm test`; prints a table on stdout (progress on stderr) and writes every
 * figure to bench/results/fetch-memory-<time>/result.json.
 */
import { spawnSync } from "node:child_process"
import { readFileSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { join, relative } from "node:path"
import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"
import { defaultFetchMaxBytes } from "../src/Config/AppConfig.js"
import {
  type CompressionName,
  compressionNames,
  compressionTypes,
  registerCodecs,
} from "../src/Kafka/Codecs.js"
import { Child } from "./e2e/Child.js"
import { type Cluster, kafkaClient, root, versions } from "./e2e/Infra.js"
import { account, type ServiceAccount, scrape } from "./e2e/Metrics.js"
import { defaults as e2eDefaults } from "./e2e/Options.js"
import { machine } from "./e2e/Proc.js"
import { type Run, withRun } from "./e2e/Run.js"
import { buildService, startService } from "./e2e/Service.js"

const require = createRequire(import.meta.url)
const MiB = 1_048_576
const PARTITIONS = 3
/** What the service runs with (src/main.ts). */
const SERVICE_HEAP_FLAGS = ["--max-semi-space-size=8", "--max-old-space-size=160"]
/** The fetch sizes before the decode bound: 8 MiB per partition, 24 MiB per fetch. */
const OLD_SIZES = {
  KAFKA__FETCH_MAX_BYTES_PER_PARTITION: String(8 * MiB),
  KAFKA__FETCH_MAX_BYTES: String(24 * MiB),
}
/** Messages per record batch and partition, as a producer batching 1,000 small messages writes them. */
const PER_BATCH = 1_000
/** What the patch counts per decoded record beside its key and value (fetch/v4/decodeMessages.js). */
const PATCH_RECORD_OVERHEAD = 400

// -- options ----------------------------------------------------------------------------------

interface Options {
  readonly records: number
  readonly compression: CompressionName
  readonly unbounded: boolean
  readonly keep: boolean
  readonly out: string | undefined
  readonly stack: boolean
}

const usage = `usage: npm run bench -- fetch-memory [options]

  --records N           messages preloaded (about 60 bytes each, 3 partitions)  [1000000]
  --compression C       codec of the preloaded record batches: ${compressionNames.join(", ")}  [lz4]
  --no-unbounded        skip drain (c), the old fetch sizes with the decode bound held off
  --decode-only         only the in-process decoding (step 1), no stack
  --keep                keep the topics and databases of the run
  --out DIR             result directory                           [bench/results/fetch-memory-<time>/]
  --help                this text`

class UsageError extends Error {}

const parse = (argv: ReadonlyArray<string>): Options | "help" => {
  let o: Options = {
    records: 1_000_000,
    compression: "lz4",
    unbounded: true,
    keep: false,
    out: undefined,
    stack: true,
  }
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!
    const [name, inline] = flag.includes("=")
      ? [flag.slice(0, flag.indexOf("=")), flag.slice(flag.indexOf("=") + 1)]
      : [flag, undefined]
    const value = (): string => {
      const v = inline ?? argv[++i]
      if (v === undefined) throw new UsageError(`${name}: expected a value`)
      return v
    }
    switch (name) {
      case "--help":
      case "-h":
        return "help"
      case "--records": {
        const text = value()
        if (!/^\d+$/.test(text) || Number(text) < PARTITIONS)
          throw new UsageError(`--records: expected a whole number >= ${PARTITIONS}, got ${text}`)
        o = { ...o, records: Number(text) }
        break
      }
      case "--compression": {
        const c = value()
        if (!(compressionNames as ReadonlyArray<string>).includes(c))
          throw new UsageError(`--compression: one of ${compressionNames.join(", ")}, got ${c}`)
        o = { ...o, compression: c as CompressionName }
        break
      }
      case "--no-unbounded":
        o = { ...o, unbounded: false }
        break
      case "--decode-only":
        o = { ...o, stack: false }
        break
      case "--keep":
        o = { ...o, keep: true }
        break
      case "--out":
        o = { ...o, out: value() }
        break
      default:
        throw new UsageError(`unknown option ${flag}`)
    }
  }
  return o
}

// -- the messages -----------------------------------------------------------------------------

const STATUSES = ["pending", "paid", "shipped", "cancelled"] as const

/** Message `i`: key `e0000042`, value like {"event_id":"e0000042","status":"paid","amount":123.45}. */
const messageAt = (i: number): { key: Buffer; value: Buffer } => {
  const id = `e${String(i).padStart(7, "0")}`
  const amount = ((i * 7919) % 100_000) / 100
  return {
    key: Buffer.from(id),
    value: Buffer.from(`{"event_id":"${id}","status":"${STATUSES[i % 4]}","amount":${amount}}`),
  }
}

// -- 1. in-process decoding -------------------------------------------------------------------

interface KafkaEncoder {
  readonly buffer: Buffer
}
interface DecodedRecord {
  readonly key: Buffer | null
  readonly value: Buffer | null
}
const Decoder = require("kafkajs/src/protocol/decoder") as new (buffer: Buffer) => unknown
const { RecordBatch } = require("kafkajs/src/protocol/recordBatch/v0/index.js") as {
  RecordBatch: (batch: {
    compression: number
    firstOffset: unknown
    lastOffsetDelta: number
    records: ReadonlyArray<KafkaEncoder>
  }) => Promise<KafkaEncoder>
}
const Record = require("kafkajs/src/protocol/recordBatch/record/v0/index.js") as (record: {
  offsetDelta: number
  key: Buffer
  value: Buffer
}) => KafkaEncoder
const Long = require("kafkajs/src/utils/long") as { fromValue(value: number): unknown }
const decodeMessages = require("kafkajs/src/protocol/requests/fetch/v4/decodeMessages") as ((
  decoder: unknown,
) => Promise<DecodedRecord[]>) & { readonly limits?: { maxDecodedBytesPerPartition: number } }

/** A partition's record set as a fetch response carries it: int32 size, then the record batches. */
const partitionRecordSet = async (
  first: number,
  count: number,
  compression: CompressionName,
): Promise<{ readonly buffer: Buffer; readonly keyValueBytes: number }> => {
  registerCodecs()
  const batches: Buffer[] = []
  let keyValueBytes = 0
  for (let offset = 0; offset < count; offset += PER_BATCH) {
    const records: KafkaEncoder[] = []
    const n = Math.min(PER_BATCH, count - offset)
    for (let j = 0; j < n; j++) {
      const m = messageAt(first + (offset + j) * PARTITIONS)
      keyValueBytes += m.key.length + m.value.length
      records.push(Record({ offsetDelta: j, ...m }))
    }
    const batch = await RecordBatch({
      compression: compressionTypes[compression],
      firstOffset: Long.fromValue(offset),
      lastOffsetDelta: n - 1,
      records,
    })
    batches.push(batch.buffer)
  }
  const body = Buffer.concat(batches)
  const size = Buffer.alloc(4)
  size.writeInt32BE(body.length)
  return { buffer: Buffer.concat([size, body]), keyValueBytes }
}

const exposeGc = (): (() => void) => {
  setFlagsFromString("--expose-gc")
  return runInNewContext("gc") as () => void
}

interface DecodeFigures {
  readonly label: string
  readonly bound: number
  readonly records: number
  readonly heapBytes: number
  /** Outside the V8 heap: the decompressed batches the keys and values point into. */
  readonly externalBytes: number
  /** What the patch counted for them: 400 + key + value per record. */
  readonly countedBytes: number
  readonly milliseconds: number
}

/**
 * One decode, measured in a call of its own: a finished async call leaves no register behind
 * that would keep the records of the one before alive.
 */
const decodeOnce = async (
  gc: () => void,
  buffer: Buffer,
  label: string,
  bound: number,
): Promise<DecodeFigures> => {
  gc()
  gc()
  const before = process.memoryUsage()
  const started = performance.now()
  const held: { records: DecodedRecord[] } = { records: await decodeMessages(new Decoder(buffer)) }
  const milliseconds = performance.now() - started
  gc()
  gc()
  const after = process.memoryUsage()
  const records = held.records.length
  let kv = 0
  for (const r of held.records) kv += (r.key?.length ?? 0) + (r.value?.length ?? 0)
  held.records = []
  return {
    label,
    bound,
    records,
    heapBytes: after.heapUsed - before.heapUsed,
    externalBytes: after.external - before.external,
    countedBytes: records * PATCH_RECORD_OVERHEAD + kv,
    milliseconds,
  }
}

const decodeInProcess = async (
  options: Options,
  serviceDefaultPerPartition: number,
): Promise<{
  readonly recordSetBytes: number
  readonly partitionRecords: number
  readonly keyValueBytesPerRecord: number
  readonly runs: ReadonlyArray<DecodeFigures>
}> => {
  const limits = decodeMessages.limits
  if (limits === undefined)
    throw new Error("kafkajs is not patched (patches/kafkajs+2.2.4.patch): run npm ci")
  const gc = exposeGc()
  const partitionRecords = Math.ceil(options.records / PARTITIONS)
  const set = await partitionRecordSet(0, partitionRecords, options.compression)
  const saved = limits.maxDecodedBytesPerPartition
  const runs: DecodeFigures[] = []
  try {
    for (const [label, bound] of [
      ["bound off (before the patch)", Number.POSITIVE_INFINITY],
      ["bound 8 MiB (old sizes)", 8 * MiB],
      [`bound ${(serviceDefaultPerPartition / MiB).toFixed(2)} MiB (default)`, serviceDefaultPerPartition],
    ] as const) {
      limits.maxDecodedBytesPerPartition = bound
      // Twice: the first warms the decoder up; the second is measured.
      await decodeOnce(gc, set.buffer, label, bound)
      runs.push(await decodeOnce(gc, set.buffer, label, bound))
    }
  } finally {
    limits.maxDecodedBytesPerPartition = saved
  }
  return {
    recordSetBytes: set.buffer.length - 4,
    partitionRecords,
    keyValueBytesPerRecord: set.keyValueBytes / partitionRecords,
    runs,
  }
}

// -- 2. the service against the stack --------------------------------------------------------

const say = (line: string) => process.stderr.write(`bench: ${line}\n`)
const int = (n: number) => Math.round(n).toLocaleString("en-US")
const mb = (bytes: number) => `${(bytes / 1e6).toFixed(0)} MB`
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

const preload = async (
  cluster: Cluster,
  topic: string,
  options: Options,
): Promise<{
  readonly seconds: number
  readonly ends: ReadonlyMap<number, bigint>
  readonly bytes: number
}> => {
  await cluster.createTopic(topic, PARTITIONS)
  const producer = kafkaClient("bench-fetch-memory").producer({
    idempotent: false,
    allowAutoTopicCreation: false,
  })
  await producer.connect()
  const started = performance.now()
  let bytes = 0
  const inFlight = new Set<Promise<unknown>>()
  try {
    const send = PER_BATCH * PARTITIONS
    for (let first = 0; first < options.records; first += send) {
      const messages = []
      for (let i = first; i < Math.min(options.records, first + send); i++) {
        const m = messageAt(i)
        bytes += m.value.length
        messages.push({ ...m, partition: i % PARTITIONS })
      }
      const p = producer.send({
        topic,
        acks: -1,
        compression: compressionTypes[options.compression],
        messages,
      })
      inFlight.add(p)
      void p.finally(() => inFlight.delete(p)).catch(() => undefined)
      if (inFlight.size >= 4) await Promise.race(inFlight)
    }
    await Promise.all(inFlight)
  } finally {
    await producer.disconnect()
  }
  const seconds = (performance.now() - started) / 1000
  const ends = await cluster.endOffsets(topic)
  const stored = [...ends.values()].reduce((a, b) => a + b, 0n)
  if (stored !== BigInt(options.records))
    throw new Error(`preload: ${topic} holds ${stored} messages, expected ${options.records}`)
  return { seconds, ends, bytes }
}

/**
 * Preloaded into the service: every 50 ms its heap used and committed, RSS and memory outside
 * the heap, and after each major GC the heap still used (what was alive then); the Fetch
 * requests of its consumers and the bytes of their responses (kafkajs' request events). A line
 * with the peaks and counts so far whenever a peak rises, and at least once a second.
 */
const heapProbe = `import { appendFileSync } from "node:fs"
import { constants, PerformanceObserver } from "node:perf_hooks"
import { getHeapStatistics } from "node:v8"
import kafkajs from "kafkajs"
const file = process.env.BENCH_HEAP_FILE
if (file) {
  const peak = { heapUsed: 0, heapTotal: 0, rss: 0, external: 0, afterMajorGc: 0, fetches: 0, fetchedBytes: 0 }
  let last = 0
  const write = (now) => {
    last = now
    try { appendFileSync(file, JSON.stringify({ pid: process.pid, at: now, ...peak }) + "\\n") } catch {}
  }
  setInterval(() => {
    const m = process.memoryUsage()
    let rose = false
    for (const k of ["heapUsed", "heapTotal", "rss", "external"]) if (m[k] > peak[k]) { peak[k] = m[k]; rose = true }
    const now = Date.now()
    if (rose || now - last >= 1000) write(now)
  }, 50).unref()
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      if (entry.detail?.kind !== constants.NODE_PERFORMANCE_GC_MAJOR) continue
      const used = getHeapStatistics().used_heap_size
      if (used > peak.afterMajorGc) peak.afterMajorGc = used
    }
  }).observe({ entryTypes: ["gc"] })
  const consumer = kafkajs.Kafka.prototype.consumer
  kafkajs.Kafka.prototype.consumer = function (config) {
    const c = consumer.call(this, config)
    c.on(c.events.REQUEST, ({ payload }) => {
      if (payload.apiName !== "Fetch") return
      peak.fetches++
      peak.fetchedBytes += payload.size
    })
    return c
  }
}
`

/** Preloaded into the service for drain (c): the decode bound stays off whatever the service sets. */
const unboundedProbe = (kafkajsRoot: string) => `import { createRequire } from "node:module"
const require = createRequire(${JSON.stringify(join(kafkajsRoot, "package.json"))})
const limits = require("kafkajs/src/protocol/requests/fetch/v4/decodeMessages").limits
let told = false
Object.defineProperty(limits, "maxDecodedBytesPerPartition", {
  enumerable: true,
  get: () => Number.POSITIVE_INFINITY,
  set: (bytes) => {
    if (!told) process.stderr.write("bench probe: decode bound " + bytes + " ignored, kept off\\n")
    told = true
  },
})
`

interface Drain {
  readonly label: string
  readonly description: string
  readonly env: Readonly<Record<string, string>>
  readonly unbounded: boolean
  readonly fetchMaxBytes: number
  readonly fetchMaxBytesPerPartition: number
  readonly outcome: "drained" | "crashed" | "timed out"
  readonly exit: string
  /** Messages committed past when it ended (all of them when drained). */
  readonly committed: number
  readonly seconds: number
  readonly rate: number
  readonly peakRssBytes: number
  readonly peakHeapUsedBytes: number
  readonly peakHeapTotalBytes: number
  readonly peakExternalBytes: number
  /** The largest heap used right after a major GC: the most that was alive. */
  readonly peakLiveHeapBytes: number
  /** Fetch requests of the service's consumer, and the bytes of their responses. */
  readonly fetches: number
  readonly fetchedBytes: number
  /** node's FATAL ERROR line, when it ended on one. */
  readonly fatal: string | undefined
  readonly service: ServiceAccount | undefined
  readonly lastLogLines: ReadonlyArray<string>
}

interface Sample {
  readonly heapUsed: number
  readonly heapTotal: number
  readonly external: number
  readonly afterMajorGc: number
  readonly fetches: number
  readonly fetchedBytes: number
}

const readSamples = (file: string): Sample[] => {
  try {
    return readFileSync(file, "utf8")
      .split("\n")
      .filter((l) => l !== "")
      .map((l) => JSON.parse(l) as Sample)
  } catch {
    return []
  }
}

const lastLines = (file: string, n: number): string[] => {
  try {
    return readFileSync(file, "utf8")
      .split("\n")
      .filter((l) => l.trim() !== "")
      .slice(-n)
  } catch {
    return []
  }
}

const fatalLine = (file: string): string | undefined => {
  try {
    return readFileSync(file, "utf8")
      .split("\n")
      .find((l) => l.startsWith("FATAL ERROR"))
  } catch {
    return undefined
  }
}

const drain = async (
  run: Run,
  main: string,
  source: { readonly topic: string; readonly ends: ReadonlyMap<number, bigint> },
  spec: {
    readonly label: string
    readonly description: string
    readonly env: Readonly<Record<string, string>>
    readonly unbounded: boolean
    readonly fetchMaxBytes: number
    readonly fetchMaxBytesPerPartition: number
  },
  timeoutMs: number,
): Promise<Drain> => {
  const settings = {
    source: source.topic,
    sink: run.topic(`fm-${spec.label}.sink`),
    dlq: run.topic(`fm-${spec.label}.dlq`),
    group: run.group(`fm-${spec.label}`),
    database: run.database(`fm_${spec.label}`),
    collection: "orders",
    batchSize: 500,
  }
  const heapFile = join(run.dir, `${spec.label}.heap.jsonl`)
  const logFile = join(run.dir, `${spec.label}.log`)
  const imports = [
    join(run.dir, "heap-probe.mjs"),
    ...(spec.unbounded ? [join(run.dir, "unbounded-probe.mjs")] : []),
  ]
  const total = [...source.ends.values()].reduce((a, b) => a + b, 0n)
  const service = await startService({
    main,
    settings,
    logFile,
    imports,
    extraEnv: { ...spec.env, BENCH_HEAP_FILE: heapFile },
  })
  const { child } = service
  let peakRss = 0
  let committed = 0n
  let outcome: Drain["outcome"] = "drained"
  let doneAt = 0
  let serviceAccount: ServiceAccount | undefined
  try {
    const deadline = performance.now() + timeoutMs
    for (;;) {
      peakRss = Math.max(peakRss, child.peakRssBytes())
      const offsets = await run.cluster.committed(settings.group, source.topic)
      committed = [...source.ends.keys()].reduce((n, p) => {
        const c = offsets.get(p) ?? -1n
        return n + (c > 0n ? c : 0n)
      }, 0n)
      if (committed >= total) {
        doneAt = performance.now()
        break
      }
      if (!child.running) {
        outcome = "crashed"
        doneAt = performance.now()
        break
      }
      if (performance.now() > deadline) {
        outcome = "timed out"
        doneAt = performance.now()
        break
      }
      await sleep(100)
    }
    peakRss = Math.max(peakRss, child.peakRssBytes())
    if (child.running) serviceAccount = account(await scrape(service.port).catch(() => []))
  } finally {
    if (child.running) peakRss = Math.max(peakRss, child.peakRssBytes())
  }
  const exit = await child.stop(outcome === "drained" ? 45_000 : 5_000)
  await run.mongo.drop(settings.database).catch(() => undefined)
  const samples = readSamples(heapFile)
  const max = (k: keyof Sample) => samples.reduce((m, s) => Math.max(m, s[k]), 0)
  const seconds = (doneAt - service.readyAt) / 1000
  return {
    ...spec,
    outcome,
    exit: exit.signal !== null ? `signal ${exit.signal}` : `code ${exit.code}`,
    committed: Number(committed),
    seconds,
    rate: Number(committed) / seconds,
    peakRssBytes: peakRss,
    peakHeapUsedBytes: max("heapUsed"),
    peakHeapTotalBytes: max("heapTotal"),
    peakExternalBytes: max("external"),
    peakLiveHeapBytes: max("afterMajorGc"),
    fetches: max("fetches"),
    fetchedBytes: max("fetchedBytes"),
    fatal: fatalLine(logFile),
    service: serviceAccount,
    lastLogLines: outcome === "drained" ? [] : lastLines(logFile, 8),
  }
}

/** heap_size_limit of node with the service's heap flags: what the default fetch size is made from. */
const serviceHeapLimit = (): number => {
  const r = spawnSync(
    process.execPath,
    [...SERVICE_HEAP_FLAGS, "-p", "require('node:v8').getHeapStatistics().heap_size_limit"],
    { encoding: "utf8" },
  )
  const n = Number(r.stdout.trim())
  if (r.status !== 0 || !Number.isFinite(n)) throw new Error(`could not read node's heap limit: ${r.stderr}`)
  return n
}

// -- the report -------------------------------------------------------------------------------

const mib = (bytes: number) => (Number.isFinite(bytes) ? `${(bytes / MiB).toFixed(2)} MiB` : "off")

const decodeReport = (d: Awaited<ReturnType<typeof decodeInProcess>>, o: Options): string => {
  const lines = [
    `1. decoding one partition's share in this process (no broker): ${int(d.partitionRecords)} records, ${o.compression}, batches of ${int(PER_BATCH)}, ${mib(d.recordSetBytes)} of record batches; key + value ${d.keyValueBytesPerRecord.toFixed(0)} bytes a record`,
    "   kept by fetch/v4/decodeMessages.js, after a full GC, while the records are held:",
    `   ${"".padEnd(30)}${"records".padStart(10)}${"heap".padStart(10)}${"external".padStart(10)}${"heap/rec".padStart(10)}${"ext/rec".padStart(10)}${"counted/rec".padStart(13)}${"counted".padStart(10)}${"ms".padStart(7)}`,
  ]
  for (const r of d.runs) {
    const per = (bytes: number) => (r.records === 0 ? "-" : `${(bytes / r.records).toFixed(0)} B`)
    lines.push(
      `   ${r.label.padEnd(30)}${int(r.records).padStart(10)}${mb(r.heapBytes).padStart(10)}${mb(r.externalBytes).padStart(10)}${per(r.heapBytes).padStart(10)}${per(r.externalBytes).padStart(10)}${per(r.countedBytes).padStart(13)}${mb(r.countedBytes).padStart(10)}${r.milliseconds.toFixed(0).padStart(7)}`,
    )
  }
  lines.push(
    "   heap: V8 heap used; external: memory outside the heap (the decompressed batches the keys and values point into);",
    `   counted: what the patch counts against the bound, ${PATCH_RECORD_OVERHEAD} + key + value bytes a record`,
  )
  return lines.join("\n")
}

const drainReport = (drains: ReadonlyArray<Drain>, records: number, topicBytes: number): string => {
  const widths = [34, 7, 11, 7, 10, 11, 11, 12, 10, 9, 10, 11] as const
  const row = (cells: ReadonlyArray<string>) =>
    `   ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[0]) : c.padStart(widths[i] ?? 10))).join("")}`
  const size = (bytes: number) => (Number.isFinite(bytes) ? (bytes / MiB).toFixed(2) : "off")
  const lines = [
    `2. draining ${int(records)} messages with the service (node main.js, ${SERVICE_HEAP_FLAGS.join(" ")}), each drain into fresh topics, group and database`,
    `${row(["", "fetch", "/partition", "bound", "peak RSS", "peak heap", "live heap", "heap total", "external", "fetches", "fetched", "records/s"])}   end`,
  ]
  for (const d of drains) {
    const end =
      d.outcome === "drained"
        ? `drained, ${d.exit}`
        : `${d.outcome} (${d.exit}) after ${d.seconds.toFixed(0)} s, ${int(d.committed)} committed`
    lines.push(
      `${row([
        `(${d.label}) ${d.description}`,
        size(d.fetchMaxBytes),
        size(d.fetchMaxBytesPerPartition),
        d.unbounded ? "off" : size(d.fetchMaxBytesPerPartition),
        mb(d.peakRssBytes),
        mb(d.peakHeapUsedBytes),
        mb(d.peakLiveHeapBytes),
        mb(d.peakHeapTotalBytes),
        mb(d.peakExternalBytes),
        int(d.fetches),
        mb(d.fetchedBytes),
        int(d.rate),
      ])}   ${end}`,
    )
  }
  lines.push(
    "   fetch, /partition, bound: KAFKA__FETCH_MAX_BYTES, KAFKA__FETCH_MAX_BYTES_PER_PARTITION and the decode bound, in MiB",
    "   peak RSS: VmHWM. Sampled in the service every 50 ms: peak heap (V8 heap used), heap total (committed), external",
    "   (memory outside the heap: buffers); live heap: the largest heap used right after a major GC",
    `   fetches, fetched: the consumer's Fetch requests and the bytes of their responses (the topic holds about ${mb(topicBytes)})`,
    "   records/s: messages committed per second from ready to the last commit (to the end of the drain if it did not finish)",
  )
  const [a, ...rest] = drains
  if (a !== undefined) {
    const ratio = (x: number, y: number) => (y === 0 ? "-" : (x / y).toFixed(2))
    for (const d of rest) {
      lines.push(
        `   (${d.label}) / (a): peak RSS ${ratio(d.peakRssBytes, a.peakRssBytes)}, peak heap ${ratio(d.peakHeapUsedBytes, a.peakHeapUsedBytes)}, live heap ${ratio(d.peakLiveHeapBytes, a.peakLiveHeapBytes)}, records/s ${ratio(d.rate, a.rate)}`,
      )
    }
  }
  for (const d of drains) {
    if (d.outcome === "drained") continue
    if (d.fatal !== undefined) lines.push(`   (${d.label}) ${d.fatal}`)
    else
      lines.push(`   (${d.label}) last log lines:`, ...d.lastLogLines.map((l) => `      ${l.slice(0, 200)}`))
  }
  return lines.join("\n")
}

// -- main -------------------------------------------------------------------------------------

const stamp = (d: Date) => d.toISOString().replace(/[-:]/g, "").replace(/\..*$/, "").toLowerCase()

const main = async (argv: ReadonlyArray<string>): Promise<number> => {
  let options: Options | "help"
  try {
    options = parse(argv)
  } catch (e) {
    if (!(e instanceof UsageError)) throw e
    process.stderr.write(`${e.message}\n\n${usage}\n`)
    return 2
  }
  if (options === "help") {
    process.stdout.write(`${usage}\n`)
    return 0
  }
  const o = options
  const started = performance.now()
  const startedAt = new Date()
  const heapLimit = serviceHeapLimit()
  const fetchMaxBytes = defaultFetchMaxBytes(heapLimit)
  const perPartition = Math.max(65_536, Math.floor(fetchMaxBytes / PARTITIONS))

  say("1. decoding in this process")
  const decoded = await decodeInProcess(o, perPartition)
  const header = `fetch memory, ${startedAt.toISOString().slice(0, 10)}: ${int(o.records)} messages of ${(messageAt(0).value.length + messageAt(o.records - 1).value.length) / 2} bytes or so (JSON objects the shipped pipeline dead-letters), key 8 bytes, ${o.compression}, ${PARTITIONS} partitions; node ${process.version}, ${machine().cores} cores`
  if (!o.stack) {
    process.stdout.write(`${header}\n\n${decodeReport(decoded, o)}\n`)
    return 0
  }

  const out = o.out ?? join(root, "bench", "results", `fetch-memory-${stamp(startedAt)}`)
  await withRun({ ...e2eDefaults, keep: o.keep, out }, async (run) => {
    writeFileSync(join(run.dir, "heap-probe.mjs"), heapProbe)
    writeFileSync(join(run.dir, "unbounded-probe.mjs"), unboundedProbe(root))
    say("building the service from the working tree")
    const main = buildService(join(run.dir, "service"))
    const topic = run.topic("fm-source")
    say(`2. preloading ${int(o.records)} messages (${o.compression}) into ${topic}`)
    const source = await preload(run.cluster, topic, o)
    say(`   ${int(o.records / source.seconds)} messages/s`)
    const specs = [
      {
        label: "a",
        description: "defaults",
        env: {},
        unbounded: false,
        fetchMaxBytes,
        fetchMaxBytesPerPartition: perPartition,
      },
      {
        label: "b",
        description: "old fetch sizes",
        env: OLD_SIZES,
        unbounded: false,
        fetchMaxBytes: 24 * MiB,
        fetchMaxBytesPerPartition: 8 * MiB,
      },
      ...(o.unbounded
        ? [
            {
              label: "c",
              description: "old sizes, bound off (probe)",
              env: OLD_SIZES,
              unbounded: true,
              fetchMaxBytes: 24 * MiB,
              fetchMaxBytesPerPartition: 8 * MiB,
            },
          ]
        : []),
    ]
    const drains: Drain[] = []
    for (const spec of specs) {
      // The first drain may take its time; the others at most 3 times as long (a stuck one ends).
      const first = drains[0]
      const timeoutMs =
        first === undefined ? 120_000 + o.records * 2 : Math.max(60_000, first.seconds * 3_000)
      say(`   drain (${spec.label}) ${spec.description}`)
      const d = await drain(run, main, { topic, ends: source.ends }, spec, timeoutMs)
      drains.push(d)
      say(
        `   (${spec.label}) ${d.outcome}: ${int(d.rate)} records/s, peak RSS ${mb(d.peakRssBytes)}, peak heap ${mb(d.peakHeapUsedBytes)}`,
      )
      if (
        spec.unbounded &&
        !readFileSync(join(run.dir, `${spec.label}.log`), "utf8").includes("bench probe: decode bound")
      )
        throw new Error(`drain (${spec.label}): the probe did not hold the decode bound off`)
    }
    const seconds = (performance.now() - started) / 1000
    const resultFile = join(run.dir, "result.json")
    writeFileSync(
      resultFile,
      `${JSON.stringify(
        {
          startedAt: startedAt.toISOString(),
          seconds,
          argv,
          options: o,
          machine: machine(),
          versions: await versions(run.mongo),
          serviceHeapLimit: heapLimit,
          preload: { seconds: source.seconds, valueBytes: source.bytes },
          decode: decoded,
          drains,
        },
        null,
        2,
      )}\n`,
    )
    process.stdout.write(
      [
        header,
        `preload: ${int(o.records)} messages in ${source.seconds.toFixed(0)} s; run took ${seconds.toFixed(0)} s`,
        "",
        decodeReport(decoded, o),
        "",
        drainReport(drains, o.records, decoded.recordSetBytes * PARTITIONS),
        "",
        `every figure: ${relative(root, resultFile)}`,
        "",
      ].join("\n"),
    )
  })
  return 0
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code
    for (const c of Child.live) void c.stop(5_000)
  },
  (e: unknown) => {
    process.stderr.write(`bench: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`)
    process.exitCode = 1
  },
)
