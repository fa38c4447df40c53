/**
 * Runs the service as its users do: a separate Node process configured by environment
 * variables, against the real Kafka broker and MongoDB-compatible server. Also the tools the
 * tests use to look at what came out: topic contents and offsets, group progress, MongoDB.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { dirname, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { type IHeaders, Kafka, logLevel } from "kafkajs"
import { MongoClient } from "mongodb"
import { encode, type GeneratedRecord } from "../../../src/Generator/Records.js"
import { registerCodecs } from "../../../src/Kafka/Codecs.js"
import { silenceKafkajsTimeoutWarning } from "../../../src/Kafka/NodeWarnings.js"
import { kafkaBrokers, mongoUri, unique } from "./Stack.js"

silenceKafkajsTimeoutWarning()

registerCodecs()

export const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..")
export const kafka = new Kafka({ brokers: kafkaBrokers, logLevel: logLevel.NOTHING })

export interface Names {
  readonly source: string
  readonly sink: string
  readonly dlq: string
  readonly group: string
  readonly database: string
}

export const freshNames = (prefix: string): Names => {
  const source = unique(prefix)
  return {
    source,
    sink: `${source}.clean`,
    dlq: `${source}.dlq`,
    group: `${source}-group`,
    database: source.replace(/-/g, "_"),
  }
}

/**
 * The service's own defaults for everything but where to connect and what to watch: batch
 * size, partition concurrency, retries and timeouts as a user gets them. A test that changes
 * one passes it in `extra` and says why.
 */
export const serviceEnv = (names: Names, extra: Record<string, string> = {}): Record<string, string> => ({
  PATH: process.env.PATH ?? "",
  ENV_FILE: "/nonexistent/.env",
  KAFKA__BOOTSTRAP_SERVERS: kafkaBrokers.join(","),
  KAFKA__TOPIC_SOURCE: names.source,
  KAFKA__TOPIC_SINK: names.sink,
  KAFKA__TOPIC_DLQ: names.dlq,
  KAFKA__CONSUMER_GROUP: names.group,
  MONGODB__CONNECTION_STRING: mongoUri,
  MONGODB__DATABASE: names.database,
  MONGODB__COLLECTION: "orders",
  // No metrics server unless a test asks for one (each would need a port of its own).
  METRICS__PORT: "0",
  // Progress lines every 30 s would only add noise to the captured output.
  METRICS__PROGRESS_INTERVAL_SECONDS: "0",
  LOGGING__LEVEL: "INFO",
  ...extra,
})

/** The same: every test runs the service at its defaults. */
export const defaultServiceEnv = serviceEnv

export interface RunningService {
  readonly child: ChildProcess
  /** Everything the process wrote so far, stdout and stderr interleaved. */
  readonly output: () => string
  readonly exited: Promise<number | null>
  readonly stop: (signal?: NodeJS.Signals) => Promise<number | null>
}

export const startService = (
  env: Record<string, string>,
  args: ReadonlyArray<string> = [],
): RunningService => {
  const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts", ...args], {
    cwd: root,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  })
  let output = ""
  child.stdout?.on("data", (d: Buffer) => {
    output += d.toString()
  })
  child.stderr?.on("data", (d: Buffer) => {
    output += d.toString()
  })
  const exited = new Promise<number | null>((done) => child.once("exit", (code) => done(code)))
  return {
    child,
    output: () => output,
    exited,
    stop: async (signal = "SIGTERM") => {
      if (child.exitCode === null) child.kill(signal)
      return exited
    },
  }
}

/**
 * Polls `check` until it returns true; a check that throws counts as "not yet" (a fresh broker
 * answers "coordinator loading" for a while). Fails with `what`, the last error and the last
 * observation after `timeoutMs`.
 */
export const waitFor = async (
  what: string,
  check: () => Promise<boolean>,
  timeoutMs = 60_000,
  describe?: () => string,
) => {
  const deadline = Date.now() + timeoutMs
  let lastError: unknown
  while (Date.now() < deadline) {
    try {
      if (await check()) return
    } catch (e) {
      lastError = e
    }
    await new Promise((r) => setTimeout(r, 250))
  }
  const error = lastError === undefined ? "" : ` (last error: ${String(lastError)})`
  throw new Error(
    `timed out after ${timeoutMs} ms waiting for ${what}${error}${describe === undefined ? "" : `: ${describe()}`}`,
  )
}

export const createTopic = async (topic: string, numPartitions = 3, config: Record<string, string> = {}) => {
  const admin = kafka.admin()
  await admin.connect()
  try {
    const configEntries = Object.entries(config).map(([name, value]) => ({ name, value }))
    await admin.createTopics({ topics: [{ topic, numPartitions, configEntries }], waitForLeaders: true })
  } finally {
    await admin.disconnect()
  }
}

/** Produces generated records keyed by event_id, with their defect in an `x-defect` header. */
export const produce = async (topic: string, records: ReadonlyArray<GeneratedRecord>) => {
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
  await producer.connect()
  try {
    for (let i = 0; i < records.length; i += 500) {
      await producer.send({
        topic,
        acks: -1,
        messages: records.slice(i, i + 500).map((r) => ({
          key: r.key,
          value: encode(r),
          headers: {
            "x-index": String(r.index),
            ...(r.defect === undefined ? {} : { "x-defect": r.defect }),
          },
        })),
      })
    }
  } finally {
    await producer.disconnect()
  }
}

/** Messages in a topic, from its offsets (no consumer needed). */
export const topicSize = async (topic: string): Promise<number> => {
  const admin = kafka.admin()
  await admin.connect()
  try {
    const offsets = await admin.fetchTopicOffsets(topic)
    return offsets.reduce((n, p) => n + Number(p.high) - Number(p.low), 0)
  } finally {
    await admin.disconnect()
  }
}

/** The group's committed offset per partition of `topic` (partitions without one are absent or -1). */
export const committedOffsets = async (
  group: string,
  topic: string,
): Promise<ReadonlyMap<number, number>> => {
  const admin = kafka.admin()
  await admin.connect()
  try {
    const [offsets] = await admin.fetchOffsets({ groupId: group, topics: [topic] })
    return new Map(offsets?.partitions.map((p) => [p.partition, Number(p.offset)]) ?? [])
  } finally {
    await admin.disconnect()
  }
}

/** True when the group has committed every offset of the topic. */
export const groupCaughtUp = async (group: string, topic: string): Promise<boolean> => {
  const admin = kafka.admin()
  await admin.connect()
  try {
    const [ends, committed] = await Promise.all([
      admin.fetchTopicOffsets(topic),
      admin.fetchOffsets({ groupId: group, topics: [topic] }),
    ])
    const done = new Map(committed[0]?.partitions.map((p) => [p.partition, Number(p.offset)]) ?? [])
    return ends.every((p) => Number(p.high) === 0 || done.get(p.partition) === Number(p.high))
  } finally {
    await admin.disconnect()
  }
}

/**
 * One instance of the service over what is on the source topic: started with `env`, stopped
 * with SIGTERM once the group has committed every offset. Returns the exit code and the output.
 */
export const drain = async (env: Record<string, string>, names: Names, timeoutMs = 90_000) => {
  const service = startService(env)
  try {
    await waitFor(
      "the group to commit every offset",
      () => groupCaughtUp(names.group, names.source),
      timeoutMs,
      service.output,
    )
    return { code: await service.stop("SIGTERM"), output: service.output() }
  } finally {
    await service.stop("SIGKILL")
  }
}

export interface ReadMessage {
  readonly partition: number
  readonly key: string | null
  readonly value: Buffer | null
  readonly headers: Record<string, string>
}

const headersOf = (headers: IHeaders | undefined): Record<string, string> =>
  Object.fromEntries(Object.entries(headers ?? {}).map(([k, v]) => [k, String(v)]))

/** Reads a whole topic from the beginning, as a read_committed consumer sees it (see readCommitted). */
export const readTopic = (topic: string): Promise<ReadonlyArray<ReadMessage>> => readCommitted(topic)

/**
 * Reads a whole topic from the beginning as a read_committed consumer sees it: the messages of
 * committed transactions (and of no transaction), never those of aborted ones. Done when every
 * partition's position has reached the end offset it had when the read began.
 */
export const readCommitted = async (topic: string): Promise<ReadonlyArray<ReadMessage>> => {
  const admin = kafka.admin()
  await admin.connect()
  const ends = new Map(
    (await admin.fetchTopicOffsets(topic).finally(() => admin.disconnect())).map((p) => [
      p.partition,
      Number(p.high),
    ]),
  )
  const pending = new Set([...ends].filter(([, end]) => end > 0).map(([p]) => p))
  if (pending.size === 0) return []
  const consumer = kafka.consumer({
    groupId: unique("committed-reader"),
    readUncommitted: false,
    maxBytesPerPartition: 4 * 1024 * 1024,
  })
  const messages: ReadMessage[] = []
  await consumer.connect()
  try {
    await consumer.subscribe({ topic, fromBeginning: true })
    await new Promise<void>((done, fail) => {
      const timer = setTimeout(
        () =>
          fail(
            new Error(
              `read_committed: partitions ${[...pending].join(", ")} of ${topic} did not reach their end`,
            ),
          ),
        90_000,
      )
      void consumer.run({
        eachBatch: async ({ batch, resolveOffset }) => {
          for (const message of batch.messages) {
            messages.push({
              partition: batch.partition,
              key: message.key === null ? null : message.key.toString(),
              value: message.value,
              headers: headersOf(message.headers),
            })
            resolveOffset(message.offset)
          }
          // The last offset counts the aborted messages and transaction markers it skipped.
          if (Number(batch.lastOffset()) + 1 >= (ends.get(batch.partition) ?? 0))
            pending.delete(batch.partition)
          if (pending.size === 0) {
            clearTimeout(timer)
            done()
          }
        },
      })
    })
  } finally {
    await consumer.disconnect()
  }
  return messages
}

export const withMongo = async <A>(f: (client: MongoClient) => Promise<A>, uri = mongoUri): Promise<A> => {
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 5_000 })
  await client.connect()
  try {
    return await f(client)
  } finally {
    await client.close()
  }
}

export const mongoIds = (database: string, uri = mongoUri): Promise<ReadonlyArray<string>> =>
  withMongo(async (client) => {
    const docs = await client
      .db(database)
      .collection<{ _id: string }>("orders")
      .find({}, { projection: { _id: 1 } })
      .toArray()
    return docs.map((d) => d._id)
  }, uri)

export const dropDatabase = (database: string) => withMongo((client) => client.db(database).dropDatabase())

/** The shutdown summary the service logs when it stops (the last one, after restarts). */
export const summaryOf = (output: string): Record<string, number> | undefined => {
  const lines = output.split("\n").filter((l) => l.includes('"pipeline stopped"'))
  const last = lines[lines.length - 1]
  if (last === undefined) return undefined
  const parsed = JSON.parse(last) as { annotations: { summary: Record<string, number> } }
  return parsed.annotations.summary
}
