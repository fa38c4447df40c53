/**
 * In-memory stand-ins for the service's Kafka and MongoDB layers: the source (a partitioned
 * log that tests append to, consumed in batches of PIPELINE__BATCH_SIZE and committed after each
 * batch is handled), the producer (every message sent, by topic), the admin the lag is read
 * from, and MongoDB (documents by `_id`). For unit tests of the processor and of the service's
 * wiring, without servers; what they claim of Kafka or MongoDB themselves is tested against the
 * real ones (test/integration).
 *
 * `layer(settings)` builds them all once; `MemoryStack` is the handle a test uses to feed the
 * source, read what came out, make a server fail, and `reset` everything to empty, so that
 * tests sharing the layer (`it.layer`) do not depend on each other.
 */
import { Context, Deferred, Effect, Layer, Option, Queue } from "effect"
import type { KafkaMessage, Message } from "kafkajs"
import type { Document } from "mongodb"
import { AppConfig, type AppSettings, decodeSettings, type Env } from "../../src/Config/AppConfig.js"
import { KafkaProduceError } from "../../src/Kafka/Errors.js"
import { KafkaAdmin, type OffsetsAdmin } from "../../src/Kafka/KafkaAdmin.js"
import { type Batch, batchesOf, KafkaSource } from "../../src/Kafka/KafkaSource.js"
import { KafkaProducer } from "../../src/Kafka/Producer.js"
import { MongoWriteError } from "../../src/Mongo/Errors.js"
import { MongoDb } from "../../src/Mongo/MongoDb.js"
import { Status } from "../../src/Observability/Status/Status.js"
import { Stalls } from "../../src/Pipeline/Stalls.js"

/** The settings of a test: the service's defaults with test names. */
export const testEnv: Env = {
  KAFKA__BOOTSTRAP_SERVERS: "memory:9092",
  KAFKA__TOPIC_SOURCE: "orders",
  KAFKA__TOPIC_SINK: "orders.clean",
  KAFKA__CONSUMER_GROUP: "pipeline",
  MONGODB__CONNECTION_STRING: "mongodb://memory:27017/",
  MONGODB__DATABASE: "shop",
  MONGODB__COLLECTION: "orders",
  METRICS__PORT: "0",
  METRICS__PROGRESS_INTERVAL_SECONDS: "0",
}

export interface SentMessage {
  readonly topic: string
  readonly message: Message
}

class State {
  /** The source topic's partitions: every message appended, in offset order. */
  readonly log = new Map<number, KafkaMessage[]>()
  /** Committed offset (next to read) per partition. */
  readonly committed = new Map<number, number>()
  readonly sent: SentMessage[] = []
  readonly documents = new Map<string, Document>()
  /** Sends to a topic fail while its entry is set. */
  readonly failingTopics = new Map<string, KafkaProduceError>()
  mongoDown: MongoWriteError | undefined = undefined
  /** While set, every write waits without an answer (a server holding the call open). */
  mongoHangs = false
  /** Why commits fail now (the group lost this member), as the source reports it. */
  commitFailure: string | undefined = undefined
  /** Documents MongoDB refuses with a data error, by `_id`. */
  readonly refusedIds = new Set<string>()
  clear() {
    this.log.clear()
    this.committed.clear()
    this.sent.length = 0
    this.documents.clear()
    this.failingTopics.clear()
    this.mongoDown = undefined
    this.mongoHangs = false
    this.commitFailure = undefined
    this.refusedIds.clear()
  }
}

export interface MemoryStackShape {
  /** Appends values (JSON-encoded unless bytes or a string) to a partition of the source topic. */
  readonly append: (
    partition: number,
    values: ReadonlyArray<unknown>,
    headers?: (index: number) => Record<string, string>,
  ) => Effect.Effect<void>
  /** Waits until the group has committed everything appended so far. */
  readonly untilCommitted: Effect.Effect<void>
  readonly committed: (partition: number) => number
  readonly sent: (topic: string) => ReadonlyArray<Message>
  readonly documents: ReadonlyMap<string, Document>
  /** While down, every write fails with a transient error; `false` brings MongoDB back. */
  readonly mongoDown: (down: boolean) => void
  /** While hanging, every write waits without an answer or an error; `false` lets new writes through. */
  readonly mongoHangs: (hangs: boolean) => void
  /** The source says commits fail with `error` (undefined: they succeed again). */
  readonly commitFails: (error: string | undefined) => void
  readonly refuseDocument: (id: string) => void
  /** While set, every send to `topic` fails with a transient error. */
  readonly topicDown: (topic: string, down: boolean) => void
  readonly reset: Effect.Effect<void>
}

export class MemoryStack extends Context.Service<MemoryStack, MemoryStackShape>()("test/MemoryStack") {}

const bytesOf = (value: unknown): Buffer =>
  Buffer.isBuffer(value)
    ? value
    : value instanceof Uint8Array
      ? Buffer.from(value)
      : Buffer.from(typeof value === "string" ? value : JSON.stringify(value))

const transient = (topic: string, messages: number) =>
  new KafkaProduceError({ topic, messages, kind: "transient", cause: "the broker is away (in-memory test)" })

/** Every in-memory layer of the service, over one state, plus MemoryStack to drive them. */
export const layer = (env: Env = {}) =>
  Layer.unwrap(
    Effect.gen(function* () {
      const settings: AppSettings = yield* decodeSettings({ ...testEnv, ...env })
      const state = new State()
      // Batches appended and not yet handed to the pipeline; the source takes from here.
      const pending = yield* Queue.unbounded<Batch>()
      let settled = yield* Deferred.make<void>()
      const allCommitted = () =>
        [...state.log].every(([p, messages]) => (state.committed.get(p) ?? 0) >= messages.length)

      const stack: MemoryStackShape = {
        append: (partition, values, headers) =>
          Effect.gen(function* () {
            const log = state.log.get(partition) ?? []
            state.log.set(partition, log)
            const messages = values.map(
              (value, i): KafkaMessage => ({
                key: null,
                value: bytesOf(value),
                timestamp: String(Date.UTC(2026, 10, 27)),
                attributes: 0,
                offset: String(log.length + i),
                headers: headers?.(i) ?? {},
              }),
            )
            log.push(...messages)
            if (!allCommitted() && (yield* Deferred.isDone(settled))) settled = yield* Deferred.make<void>()
            for (const part of batchesOf(messages, settings.pipeline.batchSize)) {
              yield* Queue.offer(pending, {
                topic: settings.kafka.topicSource,
                partition,
                messages: part,
                firstOffset: part[0]!.offset,
                lastOffset: part[part.length - 1]!.offset,
                highWatermark: String(log.length),
                // One worker takes them in order: no batch waits for another's turn.
                sequence: 1,
                startsFetch: true,
                generation: 1,
              })
            }
          }),
        untilCommitted: Effect.suspend(() => (allCommitted() ? Effect.void : Deferred.await(settled))),
        committed: (partition) => state.committed.get(partition) ?? 0,
        sent: (topic) => state.sent.filter((s) => s.topic === topic).map((s) => s.message),
        documents: state.documents,
        commitFails: (error) => {
          state.commitFailure = error
        },
        mongoHangs: (hangs) => {
          state.mongoHangs = hangs
        },
        mongoDown: (down) => {
          state.mongoDown = down
            ? new MongoWriteError({
                documents: 0,
                kind: "transient",
                cause: "MongoDB is away (in-memory test)",
              })
            : undefined
        },
        refuseDocument: (id) => void state.refusedIds.add(id),
        topicDown: (topic, down) => {
          if (down) state.failingTopics.set(topic, transient(topic, 0))
          else state.failingTopics.delete(topic)
        },
        reset: Effect.gen(function* () {
          state.clear()
          yield* Queue.clear(pending)
          yield* Deferred.succeed(settled, undefined)
        }),
      }

      const source = KafkaSource.of({
        // One worker, like one partition at a time; a batch is committed once handled.
        consume: (handle) =>
          Effect.forkScoped(
            Effect.forever(
              Effect.gen(function* () {
                const batch = yield* Queue.take(pending)
                yield* handle(batch)
                state.committed.set(batch.partition, Number(batch.lastOffset) + 1)
                if (allCommitted()) yield* Deferred.succeed(settled, undefined)
              }),
            ),
          ).pipe(Effect.asVoid),
        crashed: Effect.never,
        joined: Effect.succeed(true),
        commitFailure: Effect.sync(() =>
          state.commitFailure === undefined
            ? Option.none()
            : Option.some({ since: Date.now() - 5_000, error: state.commitFailure }),
        ),
        assigned: Effect.sync(() => [...state.log.keys()].sort((a, b) => a - b)),
        committed: Effect.sync(
          () =>
            new Map(
              [...state.committed].map(([p, offset]) => [
                p,
                {
                  offset: String(offset),
                  highWatermark: String(state.log.get(p)?.length ?? 0),
                  at: Date.now(),
                },
              ]),
            ),
        ),
      })

      const producer = KafkaProducer.of({
        send: (topic, messages) =>
          Effect.suspend(() => {
            const failure = state.failingTopics.get(topic)
            if (failure !== undefined) return Effect.fail(transient(topic, messages.length))
            for (const message of messages) state.sent.push({ topic, message })
            return Effect.void
          }),
        maxMessageBytes: () => 1_048_588,
      })

      const mongo = MongoDb.of({
        upsert: (documents) =>
          Effect.suspend(() => {
            if (state.mongoDown !== undefined) return Effect.fail(state.mongoDown)
            if (state.mongoHangs) return Effect.never
            const rejections = []
            for (const [index, { id, document }] of documents.entries()) {
              if (state.refusedIds.has(id)) {
                rejections.push({ index, code: 2, message: `document ${id} refused (in-memory test)` })
              } else {
                state.documents.set(id, { ...document, _id: id })
              }
            }
            return Effect.succeed(rejections)
          }),
        ping: Effect.void,
      })

      const admin: OffsetsAdmin = {
        connect: async () => undefined,
        fetchTopicOffsets: async () =>
          [...state.log].map(([partition, messages]) => ({
            partition,
            offset: String(messages.length),
            high: String(messages.length),
            low: "0",
          })),
        fetchOffsets: async ({ topics }) =>
          (topics ?? []).map((topic) => ({
            topic,
            partitions: [...state.committed].map(([partition, offset]) => ({
              partition,
              offset: String(offset),
              metadata: null,
            })),
          })),
      }

      return Layer.mergeAll(
        Layer.succeed(MemoryStack, stack),
        Layer.succeed(AppConfig, settings),
        Layer.succeed(KafkaSource, source),
        Layer.succeed(KafkaProducer, producer),
        Layer.succeed(KafkaAdmin, admin),
        Layer.succeed(MongoDb, mongo),
        Stalls.layer,
        Status.layer.pipe(Layer.provide(Layer.succeed(AppConfig, settings))),
      )
    }),
  )
