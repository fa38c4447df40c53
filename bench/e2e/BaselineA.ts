/**
 * Baseline A, the client ceiling (a child of the benchmark): a bare kafkajs consumer group
 * feeding a kafkajs producer, shaped like the service's source and sink (batches of PIPELINE__BATCH_SIZE
 * messages, partitions consumed concurrently, commit after the write, idempotent producer with
 * acks from all replicas) and doing nothing else with a message than JSON.parse and
 * JSON.stringify: no tasks, no MongoDB.
 */
import { Kafka, type KafkaMessage, logLevel, type Message, Partitioners } from "kafkajs"
import { registerCodecs } from "../../src/Kafka/Codecs.js"
import { silenceKafkajsTimeoutWarning } from "../../src/Kafka/NodeWarnings.js"
import { childConfig, emit } from "./Protocol.js"

export interface BaselineAConfig {
  readonly brokers: ReadonlyArray<string>
  readonly source: string
  readonly target: string
  readonly group: string
  readonly batchSize: number
  readonly partitionsConcurrency: number
  readonly expected: number
}

const batchesOf = <A>(items: ReadonlyArray<A>, size: number): ReadonlyArray<ReadonlyArray<A>> => {
  const out: A[][] = []
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size))
  return out
}

const passThrough = (m: KafkaMessage): Message => {
  if (m.value === null) return { key: m.key, value: null }
  try {
    return { key: m.key, value: JSON.stringify(JSON.parse(m.value.toString("utf8"))) }
  } catch {
    return { key: m.key, value: m.value }
  }
}

const main = async () => {
  const config = childConfig<BaselineAConfig>()
  silenceKafkajsTimeoutWarning()
  registerCodecs()
  const kafka = new Kafka({
    clientId: "bench-baseline-a",
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
        await producer.send({ topic: config.target, acks: -1, messages: batch.map(passThrough) })
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
        written += batch.length
        if (written >= config.expected) finish()
      }
    },
  })
  await finished
  emit("done", { records: written })
  await consumer.disconnect()
  await producer.disconnect()
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`baseline A: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`)
    process.exit(1)
  },
)
