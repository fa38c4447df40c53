/**
 * Step 1: the source topic, filled once per run with the benchmark stream (see Dataset) by an
 * idempotent producer as the generator's Kafka output configures it. Every drain reads it.
 */
import { Partitioners } from "kafkajs"
import type { GeneratedRecord, Kind } from "../../src/Generator/Records.js"
import { benchRecords, messageOf, parsesAsObject } from "./Dataset.js"
import { type Cluster, kafkaClient } from "./Infra.js"

export interface Preloaded {
  readonly topic: string
  readonly records: number
  readonly kinds: Readonly<Record<Kind, number>>
  /** Generated duplicates left out of the stream (see Dataset.benchRecords). */
  readonly leftOut: number
  readonly seconds: number
  readonly ends: ReadonlyMap<number, bigint>
  /**
   * The documents baseline C stores: one per distinct key among the messages whose value is a
   * JSON object, and one per such message without a key.
   */
  readonly bareDocuments: number
}

const SEND = 2_000

export const preload = async (
  cluster: Cluster,
  topic: string,
  partitions: number,
  seed: number,
  count: number,
  farLimit: number | undefined,
): Promise<Preloaded> => {
  await cluster.createTopic(topic, partitions)
  const producer = kafkaClient("bench-preload").producer({
    idempotent: true,
    maxInFlightRequests: 1,
    createPartitioner: Partitioners.DefaultPartitioner,
  })
  await producer.connect()
  // The change stream's kinds stay 0: the bench draws plain records.
  const kinds: Record<GeneratedRecord["kind"], number> = {
    valid: 0,
    invalid: 0,
    duplicate: 0,
    malformed: 0,
    oversized: 0,
    create: 0,
    update: 0,
    delete: 0,
    tombstone: 0,
  }
  const started = performance.now()
  let lastIndex = -1
  const keys = new Set<string>()
  let keyless = 0
  try {
    let batch = []
    for (const record of benchRecords(seed, 0, count, farLimit)) {
      kinds[record.kind]++
      lastIndex = record.index
      if (parsesAsObject(record)) {
        if (record.key === null) keyless++
        else keys.add(record.key)
      }
      batch.push(messageOf(record))
      if (batch.length === SEND) {
        await producer.send({ topic, acks: -1, messages: batch })
        batch = []
      }
    }
    if (batch.length > 0) await producer.send({ topic, acks: -1, messages: batch })
  } finally {
    await producer.disconnect()
  }
  const seconds = (performance.now() - started) / 1000
  const ends = await cluster.endOffsets(topic)
  const stored = [...ends.values()].reduce((a, b) => a + b, 0n)
  if (stored !== BigInt(count))
    throw new Error(`preload: ${topic} holds ${stored} messages, expected ${count}`)
  return {
    topic,
    records: count,
    kinds,
    leftOut: lastIndex + 1 - count,
    seconds,
    ends,
    bareDocuments: keys.size + keyless,
  }
}
