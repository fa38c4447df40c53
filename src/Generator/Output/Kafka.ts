/**
 * Kafka output: an idempotent kafkajs producer (acks from all in-sync replicas), one send per
 * run of ordinary messages so throughput comes from batching, and each oversized message on
 * its own so a broker that refuses it refuses nothing else.
 */
import { Effect, Redacted } from "effect"
import { Kafka, type LogEntry, logLevel, type Message, Partitioners, type Producer } from "kafkajs"
import type { Json, JsonObject } from "../../Domain/Record.js"
import { silenceKafkajsTimeoutWarning } from "../../Kafka/NodeWarnings.js"
import type { OutputTarget } from "../Options.js"
import { encode, type GeneratedRecord } from "../Records.js"
import { KafkaConnectError, KafkaProduceError } from "./Errors.js"

type KafkaTarget = Extract<OutputTarget, { readonly _tag: "kafka" }>

/**
 * Bounded, so that a dead broker ends the run (and Ctrl-C, which waits for the send in
 * flight) within about half a minute instead of retrying forever.
 */
const RETRY = { retries: 8, initialRetryTime: 300, maxRetryTime: 5_000 }

// kafkajs warns that bounded retries weaken exactly-once; the generator wants at-least-once
// with no duplicates inside a retried send, which the idempotent producer still gives.
const QUIET = ["Limiting retries for the idempotent producer"]

/** kafkajs' WARN and ERROR lines go to stderr; stdout belongs to the records. */
const stderrLog = (entry: LogEntry): void => {
  const { message } = entry.log
  if (QUIET.some((q) => message.startsWith(q))) return
  const level = entry.level <= logLevel.ERROR ? "ERROR" : "WARN"
  process.stderr.write(`generate: kafkajs ${level} ${entry.namespace}: ${message}\n`)
}

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
  value: encode(record),
  ...(record.defect === undefined ? {} : { headers: { "x-defect": record.defect } }),
})

const isTooLarge = (cause: unknown): boolean => {
  for (let e: unknown = cause; typeof e === "object" && e !== null; ) {
    if ("type" in e && typeof e.type === "string" && e.type.endsWith("TOO_LARGE")) return true
    e = "originalError" in e ? e.originalError : "cause" in e ? e.cause : undefined
  }
  return false
}

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

/**
 * Creates the topic with the broker's defaults when it is missing, and waits for its
 * leaders, so the first send does not race auto-creation. Best effort: without the right to
 * create topics (a managed cluster), the first send reports what is wrong.
 */
const ensureTopic = async (kafka: Kafka, topic: string): Promise<void> => {
  const admin = kafka.admin()
  await admin.connect()
  try {
    const existing = await admin.listTopics()
    if (!existing.includes(topic)) await admin.createTopics({ topics: [{ topic }], waitForLeaders: true })
  } catch {
    // see above: the send will say it better
  } finally {
    await admin.disconnect()
  }
}

const connect = (target: KafkaTarget) =>
  Effect.tryPromise({
    try: async () => {
      silenceKafkajsTimeoutWarning()
      const kafka = new Kafka({
        clientId: "test-data-generator",
        brokers: [...target.brokers],
        logLevel: logLevel.WARN,
        logCreator: () => stderrLog,
        retry: RETRY,
        ...(target.sasl === undefined
          ? {}
          : {
              ssl: true,
              sasl: {
                mechanism: "plain" as const,
                username: target.sasl.username,
                password: Redacted.value(target.sasl.password),
              },
            }),
      })
      await ensureTopic(kafka, target.topic)
      const producer = kafka.producer({
        idempotent: true,
        maxInFlightRequests: 1,
        retry: RETRY,
        // Java-compatible murmur2, so keys land where the pipeline's other clients expect.
        createPartitioner: Partitioners.DefaultPartitioner,
      })
      await producer.connect()
      return producer
    },
    catch: (cause) => new KafkaConnectError({ brokers: target.brokers, cause }),
  })

const disconnect = (producer: Producer) => Effect.promise(() => producer.disconnect().catch(() => undefined))

export const kafkaOutput = (target: KafkaTarget) =>
  Effect.acquireRelease(connect(target), disconnect).pipe(
    Effect.map((producer) => {
      const send = (records: ReadonlyArray<GeneratedRecord>) =>
        Effect.tryPromise({
          try: () =>
            producer.send({
              topic: target.topic,
              acks: -1,
              messages: records.map((r) => message(r, target.partitionsKey)),
            }),
          catch: (cause) => new KafkaProduceError({ topic: target.topic, cause }),
        })
      const write = Effect.fnUntraced(function* (records: ReadonlyArray<GeneratedRecord>) {
        const refused: Array<GeneratedRecord> = []
        for (const run of runs(records)) {
          const only = run[0]
          if (run.length === 1 && only?.kind === "oversized") {
            const result = yield* Effect.result(send(run))
            if (result._tag === "Failure") {
              if (!isTooLarge(result.failure.cause)) return yield* result.failure
              refused.push(only)
            }
          } else yield* send(run)
        }
        return refused as ReadonlyArray<GeneratedRecord>
      })
      return { write }
    }),
  )
