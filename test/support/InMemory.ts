/**
 * In-memory stand-ins for the service's Kafka and MongoDB layers: the source (a partitioned
 * log that tests append to, consumed in batches of PIPELINE__BATCH_SIZE and committed after each
 * batch is handled), the producer (every message sent, by topic), the admin the lag is read
 * from, and MongoDB (documents by `_id`). For unit tests of the processor and of the service's
 * wiring, without servers; what they claim of Kafka or MongoDB themselves is tested against the
 * real ones (test/integration).
 *
 * Each stand-in is in test/support/memory/, named as the live module it stands in for;
 * `layer(settings)` builds them all once over one State; `MemoryStack` is the handle a test uses to feed the
 * source, read what came out, make a server fail, and `reset` everything to empty, so that
 * tests sharing the layer (`it.layer`) do not depend on each other.
 */
import { Context, Deferred, Effect, Layer, Queue } from "effect"
import type { KafkaMessage, Message } from "kafkajs"
import type { Document } from "mongodb"
import { AppConfig, type AppSettings, decodeSettings, type Env } from "../../src/Config/AppConfig.js"
import { KafkaAdmin } from "../../src/Kafka/KafkaAdmin.js"
import { type Batch, batchesOf, KafkaSource } from "../../src/Kafka/KafkaSource.js"
import { KafkaProducer } from "../../src/Kafka/Producer.js"
import { MongoWriteError } from "../../src/Mongo/Errors.js"
import { MongoDb } from "../../src/Mongo/MongoDb.js"
import { Status } from "../../src/Observability/Status/Status.js"
import { Stalls } from "../../src/Pipeline/Stalls.js"
import { memoryAdmin } from "./memory/KafkaAdmin.js"
import { memorySource } from "./memory/KafkaSource.js"
import { memoryMongo } from "./memory/MongoDb.js"
import { memoryProducer } from "./memory/Producer.js"
import { bytesOf, State, transient } from "./memory/State.js"

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
                afterSettled: true,
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

      return Layer.mergeAll(
        Layer.succeed(MemoryStack, stack),
        Layer.succeed(AppConfig, settings),
        Layer.succeed(
          KafkaSource,
          memorySource(
            state,
            pending,
            Effect.suspend(() => (allCommitted() ? Deferred.succeed(settled, undefined) : Effect.void)),
          ),
        ),
        Layer.succeed(KafkaProducer, memoryProducer(state)),
        Layer.succeed(KafkaAdmin, memoryAdmin(state)),
        Layer.succeed(MongoDb, memoryMongo(state, settings.mongodb.writeModel, settings.mongodb.onExisting)),
        Stalls.layer,
        Status.layer.pipe(Layer.provide(Layer.succeed(AppConfig, settings))),
      )
    }),
  )
