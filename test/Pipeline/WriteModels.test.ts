/**
 * MONGODB__WRITE_MODEL through the processor with the live sinks over the in-memory MongoDB:
 * `replace` (the default) replaces a stored document, `merge` sets the record's fields on it and
 * keeps the others, `insert` leaves it as it is; new keys are written whole under each; an older
 * write arriving late changes nothing under any; with `merge` a field name holding a dot is
 * refused by both sinks. The pipeline is config/examples/minimal.yaml: the shipped one's
 * duplicate check would remove the second version of a key these tests are about.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Metric } from "effect"
import type { KafkaMessage } from "kafkajs"
import { AppConfig } from "../../src/Config/AppConfig.js"
import { loadPipelineFile } from "../../src/Config/PipelineFile.js"
import type { Batch } from "../../src/Kafka/KafkaSource.js"
import { KafkaProducer } from "../../src/Kafka/Producer.js"
import { MongoDb } from "../../src/Mongo/MongoDb.js"
import * as Metrics from "../../src/Observability/Metrics.js"
import type { BatchSummary } from "../../src/Pipeline/Batch.js"
import { header } from "../../src/Pipeline/Messages.js"
import { buildPlan, liveSinks } from "../../src/Pipeline/PipelineDag.js"
import { makeProcessor } from "../../src/Pipeline/Processor.js"
import * as InMemory from "../support/InMemory.js"

const batchOf = (values: ReadonlyArray<Record<string, unknown>>, first: number): Batch => {
  const messages = values.map(
    (value, i): KafkaMessage => ({
      key: null,
      value: Buffer.from(JSON.stringify(value)),
      timestamp: "1795000000000",
      attributes: 0,
      offset: String(first + i),
      headers: {},
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

const batches = [
  batchOf(
    [
      { id: "a", amount: 1, note: "first" },
      { id: "b", amount: 2, note: "first" },
    ],
    0,
  ),
  batchOf(
    [
      { id: "a", amount: 10 },
      { id: "c", amount: 3 },
    ],
    2,
  ),
  // Read again late, from before a's write at offset 2: changes nothing.
  batchOf([{ id: "a", amount: 1, note: "late" }], 0),
]

const run = (
  writeModel: string | undefined,
  extra: ReadonlyArray<Batch> = [],
  settings: Record<string, string> = {},
) =>
  Effect.gen(function* () {
    const settings = yield* AppConfig
    const stack = yield* InMemory.MemoryStack
    const producer = yield* KafkaProducer
    const plan = yield* buildPlan(
      yield* loadPipelineFile("config/examples/minimal.yaml"),
      liveSinks(yield* MongoDb, producer, settings.kafka.topicSink),
      settings.pipeline,
    )
    const processor = makeProcessor(plan, producer, {
      pipeline: settings.pipeline,
      maxMessageBytes: settings.kafka.maxMessageBytes,
      dlqTopic: settings.kafka.topicDlq,
    })
    const model = settings.mongodb.writeModel
    const writes = Metric.value(Metric.withAttributes(Metrics.mongoWrites, { sink: "mongodb", model })).pipe(
      Effect.map((s) => s.count),
    )
    const writesBefore = yield* writes
    const summaries: BatchSummary[] = []
    for (const batch of [...batches, ...extra]) summaries.push(yield* processor.handle(batch))
    const documents = Object.fromEntries(
      [...stack.documents].map(([id, { _id, _kafka, ...fields }]) => [id, fields]),
    )
    return {
      summaries,
      documents,
      dlq: stack.sent(settings.kafka.topicDlq),
      writes: (yield* writes) - writesBefore,
    }
  }).pipe(
    Effect.provide(
      InMemory.layer(writeModel === undefined ? settings : { MONGODB__WRITE_MODEL: writeModel, ...settings }),
    ),
  )

describe("write models", () => {
  it.effect("replace (the default): the stored document is replaced", () =>
    Effect.gen(function* () {
      const { documents, summaries, writes } = yield* run(undefined)
      // a and b, then a and c; the late a is stale (pipeline_mongodb_writes_total{model="replace"}).
      assert.strictEqual(writes, 4)
      assert.deepStrictEqual(documents, {
        a: { id: "a", amount: 10 },
        b: { id: "b", amount: 2, note: "first" },
        c: { id: "c", amount: 3 },
      })
      assert.deepInclude(summaries[1], { valid: 2, written: { mongodb: 2, kafka: 2 } })
    }),
  )

  it.effect("merge: the record's fields are set, the stored ones it lacks are kept", () =>
    Effect.gen(function* () {
      const { documents, summaries, writes } = yield* run("merge")
      assert.strictEqual(writes, 4)
      assert.deepStrictEqual(documents, {
        a: { id: "a", amount: 10, note: "first" },
        b: { id: "b", amount: 2, note: "first" },
        c: { id: "c", amount: 3 },
      })
      assert.deepInclude(summaries[1], { valid: 2, written: { mongodb: 2, kafka: 2 } })
    }),
  )

  it.effect("insert: a stored key is left as it is, a new one is written", () =>
    Effect.gen(function* () {
      const { documents, summaries, writes } = yield* run("insert")
      // a and b, then c (a is skipped); the late a is its own first write read again.
      assert.strictEqual(writes, 4)
      assert.deepStrictEqual(documents, {
        a: { id: "a", amount: 1, note: "first" },
        b: { id: "b", amount: 2, note: "first" },
        c: { id: "c", amount: 3 },
      })
      // The skipped record still reaches the sink topic: the sinks never disagree for a limit only.
      assert.deepInclude(summaries[1], { valid: 2, deadLettered: 0, written: { mongodb: 2, kafka: 2 } })
    }),
  )

  it.effect(
    "insert, MONGODB__ON_EXISTING=dead_letter: a record of a stored key is a dead letter, with the reason",
    () =>
      Effect.gen(function* () {
        const { documents, summaries, dlq } = yield* run("insert", [], {
          MONGODB__ON_EXISTING: "dead_letter",
        })
        assert.deepStrictEqual(documents, {
          a: { id: "a", amount: 1, note: "first" },
          b: { id: "b", amount: 2, note: "first" },
          c: { id: "c", amount: 3 },
        })
        assert.deepInclude(summaries[1], { valid: 1, rejectedBySink: 1, deadLettered: 1 })
        assert.strictEqual(dlq.length, 1)
        assert.strictEqual(String(dlq[0]?.headers?.[header.errorStage]), "mongodb_sink")
        const reasons = String(dlq[0]?.headers?.[header.errorReasons])
        assert.include(reasons, '"rule":"existing_key"')
        assert.include(reasons, "MONGODB__ON_EXISTING=dead_letter")
        assert.strictEqual(JSON.parse(String(dlq[0]?.value)).amount, 10)
        // The first record of a, read again: the stored document is its own write, not another's.
        assert.deepInclude(summaries[2], { valid: 1, deadLettered: 0 })
      }),
  )

  it.effect("merge: a field name with a dot is refused by both sinks; replace stores it", () =>
    Effect.gen(function* () {
      const dotted = [batchOf([{ id: "d", amount: 4, "x.y": 1 }], 3)]
      const merged = yield* run("merge", dotted)
      assert.notProperty(merged.documents, "d")
      assert.deepInclude(merged.summaries[3], { valid: 0, rejectedBySink: 1, deadLettered: 1 })
      assert.strictEqual(String(merged.dlq[0]?.headers?.[header.errorStage]), "mongodb_sink")
      assert.include(String(merged.dlq[0]?.headers?.[header.errorReasons]), '"rule":"field_name"')
      const replaced = yield* run(undefined, dotted)
      assert.deepStrictEqual(replaced.documents.d, { id: "d", amount: 4, "x.y": 1 })
    }),
  )
})
