/**
 * Baseline C, the bare pipeline (a child of the benchmark): the least a correct pipeline must do
 * with the bare clients, and nothing more. A kafkajs consumer group with manual commits, shaped
 * like baseline A (batches of PIPELINE__BATCH_SIZE messages, partitions consumed concurrently);
 * each value is parsed once (JSON.parse); the batch goes to MongoDB (BareMongo.ts: an unordered
 * insertMany with the key as `_id`, E11000 -> replace by `_id`, as baseline B writes) and to the
 * sink topic (idempotent producer, acks from all replicas) at the same time, and its offset is
 * committed once both have acknowledged. No transforms, no checks, no dead letters, no metrics.
 *
 * Every message goes to the sink topic: a JSON object as JSON.stringify of the parsed value (as
 * baseline A sends it), anything else as its bytes. Every JSON object goes to MongoDB: under its
 * message key, or, for a message without a key, under its source coordinates
 * (`<partition>:<offset>`), so that a replay rewrites the same documents.
 */
import { Kafka, type KafkaMessage, logLevel, type Message, Partitioners } from "kafkajs"
import { MongoClient } from "mongodb"
import { registerCodecs } from "../../src/Kafka/Codecs.js"
import { silenceKafkajsTimeoutWarning } from "../../src/Kafka/NodeWarnings.js"
import { insertOrReplace, type Keyed } from "./BareMongo.js"
import { childConfig, emit } from "./Protocol.js"

export interface BaselineCConfig {
  readonly brokers: ReadonlyArray<string>
  readonly source: string
  readonly target: string
  readonly group: string
  readonly batchSize: number
  readonly partitionsConcurrency: number
  readonly expected: number
  readonly uri: string
  readonly database: string
  readonly collection: string
  readonly writeConcern: { readonly w: number | "majority"; readonly journal: boolean }
}

const batchesOf = <A>(items: ReadonlyArray<A>, size: number): ReadonlyArray<ReadonlyArray<A>> => {
  const out: A[][] = []
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size))
  return out
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

const parse = (value: Buffer): unknown => {
  try {
    return JSON.parse(value.toString("utf8"))
  } catch {
    return undefined
  }
}

/** One batch's sink messages and documents, each value parsed once. */
const split = (
  partition: number,
  batch: ReadonlyArray<KafkaMessage>,
): { readonly messages: Message[]; readonly documents: Keyed[] } => {
  const messages: Message[] = []
  const documents: Keyed[] = []
  for (const m of batch) {
    const parsed = m.value === null ? undefined : parse(m.value)
    if (!isObject(parsed)) {
      messages.push({ key: m.key, value: m.value })
      continue
    }
    messages.push({ key: m.key, value: JSON.stringify(parsed) })
    // The sink message is encoded: the parsed value itself becomes the document.
    parsed._id = m.key === null ? `${partition}:${m.offset}` : m.key.toString("utf8")
    documents.push(parsed as Keyed)
  }
  return { messages, documents }
}

const main = async () => {
  const config = childConfig<BaselineCConfig>()
  silenceKafkajsTimeoutWarning()
  registerCodecs()
  const client = new MongoClient(config.uri, { maxPoolSize: config.partitionsConcurrency + 2 })
  await client.connect()
  const collection = client.db(config.database).collection<Keyed>(config.collection)
  const writeOptions = { ordered: false, writeConcern: config.writeConcern }
  const kafka = new Kafka({
    clientId: "bench-baseline-c",
    brokers: [...config.brokers],
    logLevel: logLevel.WARN,
  })
  const producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner,
  })
  const consumer = kafka.consumer({
    groupId: config.group,
    sessionTimeout: 30_000,
    rebalanceTimeout: 60_000,
    heartbeatInterval: 3_000,
    maxBytesPerPartition: 1_048_576,
    allowAutoTopicCreation: false,
  })
  consumer.on(consumer.events.GROUP_JOIN, () => emit("joined"))
  await producer.connect()
  await consumer.connect()
  await consumer.subscribe({ topics: [config.source], fromBeginning: true })

  let written = 0
  let inserted = 0
  let replaced = 0
  let finish = () => {}
  const finished = new Promise<void>((resolve) => {
    finish = resolve
  })
  await consumer.run({
    autoCommit: false,
    eachBatchAutoResolve: false,
    partitionsConsumedConcurrently: config.partitionsConcurrency,
    eachBatch: async (payload) => {
      const fetched = payload.batch
      for (const batch of batchesOf(fetched.messages, config.batchSize)) {
        if (!payload.isRunning() || payload.isStale()) return
        const { messages, documents } = split(fetched.partition, batch)
        const [stored] = await Promise.all([
          insertOrReplace(collection, documents, writeOptions),
          producer.send({ topic: config.target, acks: -1, messages }),
        ])
        const last = batch[batch.length - 1]!.offset
        payload.resolveOffset(last)
        await payload.commitOffsetsIfNecessary({
          topics: [
            {
              topic: fetched.topic,
              partitions: [{ partition: fetched.partition, offset: String(BigInt(last) + 1n) }],
            },
          ],
        })
        await payload.heartbeat()
        inserted += stored.inserted
        replaced += stored.replaced
        written += batch.length
        if (written >= config.expected) finish()
      }
    },
  })
  await finished
  emit("done", { records: written, inserted, replaced })
  await consumer.disconnect()
  await producer.disconnect()
  await client.close()
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`baseline C: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`)
    process.exit(1)
  },
)
