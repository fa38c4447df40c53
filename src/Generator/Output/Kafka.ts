/**
 * Kafka output on the service's Kafka client and producer (idempotent, acks from all in-sync
 * replicas): one send per run of ordinary messages so throughput comes from batching, and each
 * oversized message on its own so a broker that refuses it refuses nothing else.
 */
import { Duration, Effect, Layer } from "effect"
import type { Message } from "kafkajs"
import type { Json, JsonObject } from "../../Domain/Record.js"
import { KafkaClient } from "../../Kafka/KafkaClient.js"
import { KafkaProducer } from "../../Kafka/Producer.js"
import { createMissingTopics, defaultMaxMessageBytes } from "../../Kafka/Topics.js"
import type { OutputTarget } from "../Options/Target.js"
import { encodeValue, type GeneratedRecord } from "../Records.js"

type KafkaTarget = Extract<OutputTarget, { readonly _tag: "kafka" }>

/**
 * Bounded, so that a dead broker ends the run (and Ctrl-C, which waits for the send in
 * flight) within about half a minute instead of retrying forever.
 */
const RETRY = { retries: 8, initialRetryTime: 300, maxRetryTime: 5_000 }

/** kafkajs' own default. */
const REQUEST_TIMEOUT = Duration.seconds(30)

const lookup = (value: JsonObject, path: string): Json | undefined => {
  let current: Json | undefined = value
  for (const part of path.split(".")) {
    if (typeof current !== "object" || current === null || Array.isArray(current)) return undefined
    current = current[part]
  }
  return current
}

const keyOf = (record: GeneratedRecord, partitionsKey: string | undefined): string | null => {
  if (partitionsKey === undefined || record.value instanceof Uint8Array) return record.key
  const v = lookup(record.value, partitionsKey)
  return v === undefined || v === null ? record.key : typeof v === "string" ? v : JSON.stringify(v)
}

const message = (record: GeneratedRecord, partitionsKey: string | undefined): Message => ({
  key: keyOf(record, partitionsKey),
  value: encodeValue(record),
  ...(record.defect === undefined ? {} : { headers: { "x-defect": record.defect } }),
})

/** Consecutive ordinary messages together, every oversized one alone, in stream order. */
const runs = (records: ReadonlyArray<GeneratedRecord>): Array<Array<GeneratedRecord>> => {
  const out: Array<Array<GeneratedRecord>> = []
  let current: Array<GeneratedRecord> = []
  for (const r of records) {
    if (r.kind !== "oversized") {
      current.push(r)
      continue
    }
    if (current.length > 0) out.push(current)
    out.push([r])
    current = []
  }
  if (current.length > 0) out.push(current)
  return out
}

/** The Kafka output's `write`, on the producer of `kafkaLayer`. */
export const kafkaOutput = (target: KafkaTarget) =>
  Effect.gen(function* () {
    const producer = yield* KafkaProducer
    const send = (records: ReadonlyArray<GeneratedRecord>) =>
      producer.send(
        target.topic,
        records.map((r) => message(r, target.partitionsKey)),
      )
    const write = Effect.fnUntraced(function* (records: ReadonlyArray<GeneratedRecord>) {
      const refused: Array<GeneratedRecord> = []
      for (const run of runs(records)) {
        const only = run[0]
        if (run.length === 1 && only?.kind === "oversized") {
          const result = yield* Effect.result(send(run))
          if (result._tag === "Failure") {
            // Of kind "record": the broker refused this message (MESSAGE_TOO_LARGE).
            if (result.failure.kind !== "record") return yield* result.failure
            refused.push(only)
          }
        } else yield* send(run)
      }
      return refused as ReadonlyArray<GeneratedRecord>
    })
    return { write }
  })

/**
 * Creates the topic with the broker's defaults when it is missing, so the first send does not
 * race auto-creation. Best effort: without the right to create topics (a managed cluster),
 * the first send reports what is wrong.
 */
const ensureTopic = (target: KafkaTarget) =>
  Layer.effectDiscard(
    createMissingTopics([target.topic], target.brokers).pipe(
      Effect.catchTag("KafkaTopicError", () => Effect.void),
    ),
  )

/** The service's client and producer for `target`: the topic is made sure of before the producer reads its limit. */
export const kafkaLayer = (target: KafkaTarget) =>
  KafkaProducer.layerConfig({
    brokers: target.brokers,
    topics: [target.topic],
    maxMessageBytes: defaultMaxMessageBytes,
    requestTimeout: REQUEST_TIMEOUT,
    sendDeadline: Duration.times(REQUEST_TIMEOUT, 6),
    compression: "none",
  }).pipe(
    Layer.provide(ensureTopic(target)),
    Layer.provide(
      KafkaClient.layerConfig({
        clientId: "test-data-generator",
        brokers: target.brokers,
        sasl: target.sasl,
        requestTimeout: REQUEST_TIMEOUT,
        retry: RETRY,
      }),
    ),
  )

/**
 * kafkajs warns that bounded retries weaken exactly-once; the generator wants at-least-once
 * with no duplicates inside a retried send, which the idempotent producer still gives.
 */
export const isExpectedKafkaWarning = (message: string): boolean =>
  message.includes("Limiting retries for the idempotent producer")
