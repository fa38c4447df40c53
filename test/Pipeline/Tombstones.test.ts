/**
 * Tombstones (messages whose value is null) under each MONGODB__ON_TOMBSTONE, through the
 * processor with the live sinks over the in-memory MongoDB and producer: `delete` deletes the
 * key's document unless it is newer and passes the tombstone on to the sink topic after the
 * records it follows; `ignore` counts them; `dead_letter` (the default) sends them to the
 * dead-letter topic. Every message is counted once.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Metric } from "effect"
import type { KafkaMessage } from "kafkajs"
import { AppConfig } from "../../src/Config/AppConfig.js"
import { loadPipelineFile } from "../../src/Config/PipelineFile.js"
import type { JsonObject } from "../../src/Domain/Record.js"
import { defaultRecordOptions, generate } from "../../src/Generator/Records.js"
import type { Batch } from "../../src/Kafka/KafkaSource.js"
import { KafkaProducer } from "../../src/Kafka/Producer.js"
import { MongoDb } from "../../src/Mongo/MongoDb.js"
import * as Metrics from "../../src/Observability/Metrics.js"
import type { BatchSummary } from "../../src/Pipeline/Batch.js"
import { header } from "../../src/Pipeline/Messages.js"
import { buildPlan, liveSinks } from "../../src/Pipeline/PipelineDag.js"
import { makeProcessor } from "../../src/Pipeline/Processor.js"
import * as InMemory from "../support/InMemory.js"

const valid = [...generate({ ...defaultRecordOptions, seed: 3, invalidRatio: 0, duplicateRatio: 0 }, 0, 10)]
  .filter((r) => r.kind === "valid")
  .map((r) => r.value as JsonObject)

/** A record of key `key` (a valid generated order with that event_id), or a tombstone of `key`. */
type Entry = { readonly record: string } | { readonly tombstone: string | null }

const batchOf = (entries: ReadonlyArray<Entry>, first = 0): Batch => {
  const messages = entries.map(
    (e, i): KafkaMessage => ({
      key: "record" in e ? Buffer.from(e.record) : e.tombstone === null ? null : Buffer.from(e.tombstone),
      value: "record" in e ? Buffer.from(JSON.stringify({ ...valid[i]!, event_id: e.record })) : null,
      timestamp: "1795000000000",
      attributes: 0,
      offset: String(first + i),
      headers: { "x-entry": String(first + i) },
    }),
  )
  return {
    topic: "orders",
    partition: 0,
    messages,
    firstOffset: String(first),
    lastOffset: String(first + messages.length - 1),
    highWatermark: String(first + messages.length),
    sequence: first + 1,
    afterSettled: true,
    generation: 1,
  }
}

// k1 written then deleted; k2 written; k3 never stored; k4 deleted, then written again after;
// a tombstone without a key has nothing to delete.
const entries: ReadonlyArray<Entry> = [
  { record: "k1" },
  { record: "k2" },
  { tombstone: "k1" },
  { tombstone: "k3" },
  { tombstone: "k4" },
  { record: "k4" },
  { tombstone: null },
]

/** Batches through the shipped pipeline with `onTombstone`: the summaries and what each server holds. */
const run = (onTombstone: string | undefined, batches: ReadonlyArray<Batch>) =>
  Effect.gen(function* () {
    const settings = yield* AppConfig
    const stack = yield* InMemory.MemoryStack
    const producer = yield* KafkaProducer
    const plan = yield* buildPlan(
      yield* loadPipelineFile("config/pipeline.yaml"),
      liveSinks(yield* MongoDb, producer, settings.kafka.topicSink),
      settings.pipeline,
    )
    const processor = makeProcessor(plan, producer, {
      pipeline: settings.pipeline,
      maxMessageBytes: settings.kafka.maxMessageBytes,
      dlqTopic: settings.kafka.topicDlq,
      parsing: {
        onTombstone: settings.mongodb.onTombstone,
        maxKeyBytes: settings.pipeline.maxKeyBytes,
        format: settings.pipeline.sourceFormat,
      },
    })
    const deletes = Metric.value(Metric.withAttributes(Metrics.mongoDeletes, { sink: "mongodb" })).pipe(
      Effect.map((s) => s.count),
    )
    const deletesBefore = yield* deletes
    const summaries: BatchSummary[] = []
    for (const batch of batches) summaries.push(yield* processor.handle(batch))
    return {
      deleted: (yield* deletes) - deletesBefore,
      summaries,
      documents: new Map(stack.documents),
      sink: stack
        .sent(settings.kafka.topicSink)
        .map((m) => `${String(m.key)}=${m.value === null ? "null" : "record"}`),
      dlq: stack.sent(settings.kafka.topicDlq),
    }
  }).pipe(
    Effect.provide(InMemory.layer(onTombstone === undefined ? {} : { MONGODB__ON_TOMBSTONE: onTombstone })),
  )

const accounted = (s: BatchSummary) =>
  s.valid +
  s.invalid +
  s.malformed +
  s.duplicates +
  s.filtered +
  s.rejectedBySink +
  s.failedBatch +
  s.tombstonesApplied +
  s.tombstonesIgnored

describe("tombstones", () => {
  it.effect("delete: the key's document goes, the tombstone follows its records to the sink topic", () =>
    Effect.gen(function* () {
      const { summaries, documents, sink, dlq, deleted } = yield* run("delete", [batchOf(entries)])
      const [s] = summaries
      assert.deepStrictEqual([...documents.keys()].sort(), ["k2", "k4"])
      // Deletes go first: k1's record before its tombstone is not written, k3 and k4 have no
      // document then; nothing is deleted (pipeline_mongodb_deletes_total).
      assert.strictEqual(deleted, 0)
      assert.strictEqual(documents.get("k4")?._kafka?.offset, 5)
      // The tombstone of k4 came before k4's record: sent after it, it would delete k4 on a compacted topic.
      assert.deepStrictEqual(sink, ["k1=record", "k2=record", "k4=record", "k1=null", "k3=null"])
      assert.deepInclude(s, { consumed: 7, valid: 3, tombstonesApplied: 3, malformed: 1, deadLettered: 1 })
      assert.strictEqual(accounted(s!), s!.consumed)
      assert.strictEqual(dlq.length, 1)
      assert.strictEqual(String(dlq[0]!.headers?.[header.errorStage]), "parse")
      assert.include(String(dlq[0]!.headers?.[header.errorReasons]), "tombstone_key")
    }),
  )

  it.effect("delete: a tombstone older than the stored document leaves it alone", () =>
    Effect.gen(function* () {
      // k4 stored from offset 5; the tombstone of k4 at offset 4 read again later (a replay).
      const { summaries, documents, sink, deleted } = yield* run("delete", [
        batchOf(entries),
        batchOf([{ tombstone: "k4" }], 4),
        batchOf([{ tombstone: "k2" }], 7),
      ])
      // k2's document only: k4's is newer than its tombstone.
      assert.strictEqual(deleted, 1)
      assert.deepStrictEqual([...documents.keys()], ["k4"])
      assert.strictEqual(documents.get("k4")?._kafka?.offset, 5)
      assert.deepInclude(summaries[1], { consumed: 1, tombstonesApplied: 1, deadLettered: 0 })
      // The sink topic carries what came: a compacted topic ends as the source does.
      assert.deepStrictEqual(sink.slice(5), ["k4=null", "k2=null"])
    }),
  )

  it.effect(
    "delete: a key written again after its delete is a first copy for the duplicate check, in its batch and in a later one",
    () =>
      Effect.gen(function* () {
        const { summaries, documents } = yield* run("delete", [
          batchOf([{ record: "k1" }, { tombstone: "k1" }, { record: "k1" }]),
          batchOf([{ record: "k2" }], 3),
          batchOf([{ tombstone: "k2" }], 4),
          batchOf([{ record: "k2" }, { record: "k2" }], 5),
        ])
        assert.deepStrictEqual(
          summaries.map((s) => [s.valid, s.duplicates]),
          [
            [2, 0],
            [1, 0],
            [0, 0],
            // The second copy after the delete is a duplicate of the first after it.
            [1, 1],
          ],
        )
        assert.deepStrictEqual([...documents.keys()].sort(), ["k1", "k2"])
        assert.strictEqual(documents.get("k1")?._kafka?.offset, 2)
        assert.strictEqual(documents.get("k2")?._kafka?.offset, 5)
      }),
  )

  it.effect("ignore: tombstones are counted and go nowhere", () =>
    Effect.gen(function* () {
      const { summaries, documents, sink, dlq } = yield* run("ignore", [batchOf(entries)])
      const [s] = summaries
      assert.deepStrictEqual([...documents.keys()].sort(), ["k1", "k2", "k4"])
      assert.deepStrictEqual(sink, ["k1=record", "k2=record", "k4=record"])
      assert.deepInclude(s, {
        consumed: 7,
        valid: 3,
        tombstonesIgnored: 4,
        tombstonesApplied: 0,
        deadLettered: 0,
      })
      assert.strictEqual(accounted(s!), s!.consumed)
      assert.strictEqual(dlq.length, 0)
    }),
  )

  it.effect("dead_letter (the default): tombstones go to the dead-letter topic, as empty messages", () =>
    Effect.gen(function* () {
      const { summaries, documents, sink, dlq } = yield* run(undefined, [batchOf(entries)])
      const [s] = summaries
      assert.deepStrictEqual([...documents.keys()].sort(), ["k1", "k2", "k4"])
      assert.deepStrictEqual(sink, ["k1=record", "k2=record", "k4=record"])
      assert.deepInclude(s, { consumed: 7, valid: 3, malformed: 4, deadLettered: 4, tombstonesApplied: 0 })
      assert.strictEqual(accounted(s!), s!.consumed)
      assert.deepStrictEqual(
        dlq.map((m) => String(m.headers?.["x-entry"])),
        ["2", "3", "4", "6"],
      )
      for (const m of dlq) assert.include(String(m.headers?.[header.errorReasons]), '"rule":"empty"')
    }),
  )
})
