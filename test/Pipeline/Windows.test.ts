/**
 * The duplicate check's durable window: the keys a batch leaves in it are saved beside the
 * documents, and a processor that starts without them (a restart, a crash, another instance
 * taking the partition) reads them back before its first batch of the partition, so a duplicate
 * whose first copy was committed by another process is still removed. Without the saved window
 * (memory only) the same duplicate passes: the control case.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import type { KafkaMessage, Message } from "kafkajs"
import { decodeSettings } from "../../src/Config/AppConfig.js"
import { loadPipelineFile } from "../../src/Config/PipelineFile.js"
import type { PipelineSpec } from "../../src/Config/PipelineSpec.js"
import { defaultRecordOptions, encode, type GeneratedRecord, generate } from "../../src/Generator/Records.js"
import type { Batch } from "../../src/Kafka/KafkaSource.js"
import type { ProducerShape } from "../../src/Kafka/Producer.js"
import type { WindowStore } from "../../src/Mongo/SavedKeys.js"
import { buildPlan, type SinkFactories, type StageError } from "../../src/Pipeline/PipelineDag.js"
import { makeProcessor } from "../../src/Pipeline/Processor.js"
import type { Sink, SinkStage } from "../../src/Pipeline/Sinks.js"
import { memoryMongo } from "../support/memory/MongoDb.js"
import { State } from "../support/memory/State.js"

const settingsEffect = decodeSettings({
  KAFKA__BOOTSTRAP_SERVERS: "127.0.0.1:9092",
  KAFKA__TOPIC_SOURCE: "orders",
  KAFKA__TOPIC_SINK: "orders.clean",
  KAFKA__CONSUMER_GROUP: "g",
  MONGODB__CONNECTION_STRING: "mongodb://127.0.0.1:27017/",
  MONGODB__DATABASE: "db",
  MONGODB__COLLECTION: "c",
})

const valid = [...generate({ ...defaultRecordOptions, seed: 9, pattern: "valid", duplicateRatio: 0 }, 0, 20)]

const batchOf = (records: ReadonlyArray<GeneratedRecord>, first: number, generation = 1): Batch => {
  const messages: KafkaMessage[] = records.map((r, i) => ({
    key: r.key === null ? null : Buffer.from(r.key),
    value: encode(r),
    timestamp: "1700000000000",
    attributes: 0,
    offset: String(first + i),
    headers: {},
  }))
  return {
    topic: "orders",
    partition: 0,
    messages,
    firstOffset: String(first),
    lastOffset: String(first + messages.length - 1),
    highWatermark: "0",
    sequence: first,
    afterSettled: true,
    generation,
  }
}

const sinks = (written: Array<string>): SinkFactories => {
  const sink = (name: string, stage: SinkStage): Sink<StageError> => ({
    name,
    stage,
    refuses: () => undefined,
    write: (keyed) =>
      Effect.sync(() => {
        if (stage === "mongodb_sink") written.push(...keyed.map((k) => k.key))
        return { written: keyed.length, rejected: [] }
      }),
  })
  return {
    mongodb_sink: (name) => sink(name, "mongodb_sink"),
    kafka_sink: (name) => sink(name, "kafka_sink"),
  }
}

const producer: ProducerShape = {
  maxMessageBytes: () => 1_048_588,
  send: (_topic: string, _messages: ReadonlyArray<Message>) => Effect.void,
}

/** A processor as one process would build it: its own plan (an empty window), the shared store. */
const processFor = (
  spec: PipelineSpec,
  store: WindowStore | undefined,
  written: Array<string>,
  onTombstone: "delete" | "dead_letter" = "dead_letter",
) =>
  Effect.gen(function* () {
    const settings = yield* settingsEffect
    const plan = yield* buildPlan(spec, sinks(written), settings.pipeline)
    return makeProcessor(plan, producer, {
      pipeline: settings.pipeline,
      maxMessageBytes: settings.kafka.maxMessageBytes,
      dlqTopic: "orders.dlq",
      parsing: { onTombstone, maxKeyBytes: 1024, format: "plain" },
      ...(store === undefined ? {} : { windows: { store, group: "g" } }),
    })
  })

/** A batch of records and tombstones (a key alone), in that order, from `first`. */
const mixedBatch = (entries: ReadonlyArray<GeneratedRecord | string>, first: number): Batch => {
  const batch = batchOf(
    entries.map((e) => (typeof e === "string" ? valid[0]! : e)),
    first,
  )
  return {
    ...batch,
    messages: batch.messages.map((m, i) => {
      const e = entries[i]!
      return typeof e === "string" ? { ...m, key: Buffer.from(e), value: null } : m
    }),
  }
}

/** The shipped pipeline, its duplicate check's window durable or not. */
const shipped = (durable: boolean) =>
  Effect.map(loadPipelineFile("config/pipeline.yaml"), (spec) => ({
    ...spec,
    tasks: spec.tasks.map((t) =>
      t.type === "duplicate_check"
        ? { ...t, settings: { ...t.settings, window: { ...t.settings.window, durable } } }
        : t,
    ),
  }))

describe("the duplicate check's durable window", () => {
  it.effect("catches a duplicate whose first copy another process wrote, after reading the window back", () =>
    Effect.gen(function* () {
      const spec = yield* shipped(true)
      const state = new State()
      const store = memoryMongo(state).windows
      const written: Array<string> = []

      const first = yield* processFor(spec, store, written)
      const one = yield* first.handle(batchOf(valid.slice(0, 10), 100))
      assert.strictEqual(one.valid, 10)
      assert.strictEqual([...state.savedKeys.values()][0]?.size, 1)

      // A new process (a restart): its window starts empty and is read back before the batch runs.
      const second = yield* processFor(spec, store, written)
      const again = [valid[3]!, valid[12]!, valid[7]!]
      const two = yield* second.handle(batchOf(again, 110))
      assert.strictEqual(two.duplicates, 2)
      assert.strictEqual(two.valid, 1)
      assert.deepStrictEqual(written.slice(10), [valid[12]!.key!])
    }),
  )

  it.effect("passes the same records again as a replay when they come from the same offsets", () =>
    Effect.gen(function* () {
      const spec = yield* shipped(true)
      const store = memoryMongo(new State()).windows
      const written: Array<string> = []
      yield* (yield* processFor(spec, store, written)).handle(batchOf(valid.slice(0, 5), 200))
      // The batch read again after a crash before its commit: the same messages at the same offsets.
      const replay = yield* (yield* processFor(spec, store, written)).handle(batchOf(valid.slice(0, 5), 200))
      assert.strictEqual(replay.duplicates, 0)
      assert.strictEqual(replay.valid, 5)
    }),
  )

  it.effect("forgets across processes when the window is in memory only (the control case)", () =>
    Effect.gen(function* () {
      const spec = yield* shipped(false)
      const state = new State()
      const store = memoryMongo(state).windows
      const written: Array<string> = []
      yield* (yield* processFor(spec, store, written)).handle(batchOf(valid.slice(0, 10), 100))
      assert.strictEqual(state.savedKeys.size, 0)
      const two = yield* (yield* processFor(spec, store, written)).handle(batchOf([valid[3]!], 110))
      assert.strictEqual(two.duplicates, 0)
      assert.strictEqual(two.valid, 1)
    }),
  )

  it.effect(
    "reads the window back again when the group's generation changes (the partition may have moved)",
    () =>
      Effect.gen(function* () {
        const spec = yield* shipped(true)
        const store = memoryMongo(new State()).windows
        const written: Array<string> = []
        const a = yield* processFor(spec, store, written)
        const b = yield* processFor(spec, store, written)
        yield* a.handle(batchOf(valid.slice(0, 2), 0, 1))
        // The partition moved to b, which wrote more of it; then it came back to a, one generation on.
        yield* b.handle(batchOf(valid.slice(2, 6), 2, 2))
        const back = yield* a.handle(batchOf([valid[4]!, valid[9]!], 6, 3))
        assert.strictEqual(back.duplicates, 1)
        assert.strictEqual(back.valid, 1)
      }),
  )

  it.effect("a key deleted is a first copy again after its delete, also after the window is read back", () =>
    Effect.gen(function* () {
      const spec = yield* shipped(true)
      const store = memoryMongo(new State()).windows
      const written: Array<string> = []
      const [v0, v1, v2, v3, v4, v5] = valid
      const a = yield* processFor(spec, store, written, "delete")
      yield* a.handle(mixedBatch([v0!, v1!, v2!, v3!, v4!], 100))
      // v1 deleted (the last word on it); v2 deleted and written again in one batch.
      const deletes = yield* a.handle(mixedBatch([v1!.key!, v2!.key!, v2!, v3!], 105))
      assert.deepStrictEqual([deletes.valid, deletes.duplicates, deletes.tombstonesApplied], [1, 1, 2])
      // v5 written, deleted and written again within one saved batch.
      yield* a.handle(mixedBatch([v5!, v5!.key!, v5!], 120))

      // A restart: the window read back holds the deletes in offset order.
      const b = yield* processFor(spec, store, written, "delete")
      const after = yield* b.handle(mixedBatch([v1!, v2!, v5!, v0!], 130))
      assert.strictEqual(after.valid, 1, "v1 is new after its delete; v2, v5 and v0 are duplicates")
      assert.strictEqual(after.duplicates, 3)
      assert.deepStrictEqual(written.slice(-1), [v1!.key!])
    }),
  )
})
