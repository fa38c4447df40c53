/**
 * Debezium change events (PIPELINE__SOURCE_FORMAT=debezium): the envelope is unwrapped, with or
 * without its schema wrapper; creates, reads and updates write their `after` row, deletes delete
 * the document of the message key, and what is not a usable change event is a dead letter with
 * its reason. Through the processor with the live sinks over the in-memory servers, a stream ends
 * in the source table's final state. The pipeline is config/examples/minimal.yaml (key `id`): a
 * change stream repeats keys by design, and the shipped pipeline's duplicate check would remove
 * every update.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import type { KafkaMessage } from "kafkajs"
import { AppConfig } from "../../src/Config/AppConfig.js"
import { loadPipelineFile } from "../../src/Config/PipelineFile.js"
import type { Batch } from "../../src/Kafka/KafkaSource.js"
import { KafkaProducer } from "../../src/Kafka/Producer.js"
import { MongoDb } from "../../src/Mongo/MongoDb.js"
import { changeEvent } from "../../src/Pipeline/Debezium.js"
import { header } from "../../src/Pipeline/Messages.js"
import { parseMessages } from "../../src/Pipeline/Parse.js"
import { buildPlan, liveSinks } from "../../src/Pipeline/PipelineDag.js"
import { makeProcessor } from "../../src/Pipeline/Processor.js"
import * as InMemory from "../support/InMemory.js"

const wrapped = (payload: unknown) => ({ schema: { type: "struct", optional: false }, payload })

describe("Debezium change events", () => {
  it("unwraps each kind of event", () => {
    const row = { id: 1, amount: 2 }
    const cases: ReadonlyArray<[string, Record<string, unknown>, string | null, unknown]> = [
      ["create", { op: "c", before: null, after: row }, null, { _tag: "Upsert", row }],
      ["snapshot read", { op: "r", after: row }, null, { _tag: "Upsert", row }],
      ["update, wrapped", wrapped({ op: "u", before: row, after: row }), null, { _tag: "Upsert", row }],
      ["delete", { op: "d", before: row, after: null }, '{"id":1}', { _tag: "Delete", key: "1" }],
      [
        "delete, wrapped key",
        { op: "d", before: row },
        JSON.stringify(wrapped({ id: "x" })),
        { _tag: "Delete", key: "x" },
      ],
      ["delete, compound key", { op: "d" }, '{"a":1,"b":"z"}', { _tag: "Delete", key: '[1,"z"]' }],
      ["delete, text key", { op: "d" }, "k-9", { _tag: "Delete", key: "k-9" }],
    ]
    for (const [what, value, key, expected] of cases)
      assert.deepStrictEqual(changeEvent(value as never, key, 1024), expected, what)
    const rules: ReadonlyArray<[string, Record<string, unknown>, string | null, string]> = [
      ["no op", { after: row }, null, "debezium"],
      ["truncate", { op: "t" }, null, "debezium"],
      ["create without after", { op: "c", after: null }, null, "debezium"],
      ["delete without key", { op: "d", before: row }, null, "debezium_key"],
      ["delete with an empty key", { op: "d" }, "{}", "debezium_key"],
      ["delete with a null key field", { op: "d" }, '{"id":null}', "debezium_key"],
    ]
    for (const [what, value, key, rule] of rules) {
      const event = changeEvent(value as never, key, 1024)
      assert.strictEqual(event._tag === "Invalid" ? event.rule : event._tag, rule, what)
    }
  })

  it("keys the tombstone Debezium sends after a delete as the delete: the row's document key", () => {
    const message = (key: string | null): KafkaMessage => ({
      key: key === null ? null : Buffer.from(key),
      value: null,
      timestamp: "0",
      attributes: 0,
      offset: "7",
      headers: {},
    })
    const options = { onTombstone: "delete" as const, maxKeyBytes: 1024 }
    const debezium = parseMessages(
      [message('{"id":3}'), message(JSON.stringify(wrapped({ id: "x" }))), message(null)],
      1_000_000,
      undefined,
      { ...options, format: "debezium" },
    )
    assert.deepStrictEqual(
      debezium.tombstones.map((t) => t.key),
      ["3", "x"],
    )
    assert.deepStrictEqual(
      debezium.malformed.map((m) => m.reason.rule),
      ["tombstone_key"],
    )
    // A plain source's tombstone deletes its message key as it is.
    const plain = parseMessages([message('{"id":3}')], 1_000_000, undefined, { ...options, format: "plain" })
    assert.deepStrictEqual(
      plain.tombstones.map((t) => t.key),
      ['{"id":3}'],
    )
  })

  it.effect("a stream of creates, updates and deletes ends in the table's final state", () =>
    Effect.gen(function* () {
      const events: ReadonlyArray<[key: string | null, value: unknown]> = [
        ['{"id":"a"}', { op: "c", after: { id: "a", amount: 1 } }],
        ['{"id":"b"}', wrapped({ op: "c", after: { id: "b", amount: 1 } })],
        ['{"id":"a"}', { op: "u", before: { id: "a", amount: 1 }, after: { id: "a", amount: 2 } }],
        ['{"id":"b"}', { op: "d", before: { id: "b", amount: 1 }, after: null }],
        ['{"id":"b"}', null], // Debezium's tombstone after a delete
        ['{"id":"c"}', { op: "r", after: { id: "c", amount: 3 } }],
        ['{"id":"d"}', { op: "c", after: { id: "d", amount: 4 } }],
        ['{"id":"d"}', wrapped({ op: "d", before: { id: "d", amount: 4 } })],
        ['{"id":"d"}', null],
        [null, { op: "d", before: { id: "e" } }],
        ['{"id":"t"}', { op: "t" }],
      ]
      const messages = events.map(
        ([key, value], i): KafkaMessage => ({
          key: key === null ? null : Buffer.from(key),
          value: value === null ? null : Buffer.from(JSON.stringify(value)),
          timestamp: "1795000000000",
          attributes: 0,
          offset: String(i),
          headers: {},
        }),
      )
      const batch: Batch = {
        topic: "inventory.orders",
        partition: 0,
        messages,
        firstOffset: "0",
        lastOffset: String(messages.length - 1),
        highWatermark: String(messages.length),
        sequence: 1,
        afterSettled: true,
        generation: 1,
      }
      const summary = yield* Effect.gen(function* () {
        const settings = yield* AppConfig
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
          parsing: {
            onTombstone: settings.mongodb.onTombstone,
            maxKeyBytes: settings.pipeline.maxKeyBytes,
            format: settings.pipeline.sourceFormat,
          },
        })
        const summary = yield* processor.handle(batch)
        const stack = yield* InMemory.MemoryStack
        const documents = Object.fromEntries(
          [...stack.documents].map(([id, { _id, _kafka, ...row }]) => [id, row]),
        )
        assert.deepStrictEqual(documents, { a: { id: "a", amount: 2 }, c: { id: "c", amount: 3 } })
        const sink = stack
          .sent(settings.kafka.topicSink)
          .map((m) => `${String(m.key)}=${m.value === null ? "-" : "row"}`)
        // d's create and delete in one batch: the delete is left off the sink topic only when a later row follows it.
        assert.deepStrictEqual(sink, ["a=row", "b=row", "a=row", "c=row", "d=row", "b=-", "d=-"])
        const dlq = stack.sent(settings.kafka.topicDlq)
        assert.deepStrictEqual(
          dlq.map((m) => JSON.parse(String(m.headers?.[header.errorReasons]))[0].rule),
          ["debezium_key", "debezium"],
        )
        return summary
      }).pipe(
        Effect.provide(
          // Debezium follows each delete with a tombstone; the delete has done its work.
          InMemory.layer({ PIPELINE__SOURCE_FORMAT: "debezium", MONGODB__ON_TOMBSTONE: "ignore" }),
        ),
      )
      assert.deepInclude(summary, {
        consumed: 11,
        valid: 5,
        tombstonesApplied: 2,
        tombstonesIgnored: 2,
        malformed: 2,
        deadLettered: 2,
      })
    }),
  )
})
