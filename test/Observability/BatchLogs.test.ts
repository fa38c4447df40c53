import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import type { KafkaMessage, Message } from "kafkajs"
import { decodeSettings } from "../../src/Config/AppConfig.js"
import { loadPipelineFile } from "../../src/Config/PipelineFile.js"
import { KafkaProduceError } from "../../src/Kafka/Errors.js"
import type { Batch } from "../../src/Kafka/KafkaSource.js"
import type { ProducerShape } from "../../src/Kafka/Producer.js"
import { MongoDb } from "../../src/Mongo/MongoDb.js"
import { buildPlan, liveSinks } from "../../src/Pipeline/PipelineDag.js"
import { makeProcessor } from "../../src/Pipeline/Processor.js"
import * as InMemory from "../support/InMemory.js"
import { captureLogs, parseJsonLines } from "./support.js"

const definition = `
name: logs
key: [id]
tasks:
  - name: mapping
    type: field_mapping
    settings: { mappings: [{ from: n, to: amount }] }
  - name: quality
    type: data_quality
    dependsOn: [mapping]
    settings: { rules: [{ rule: NotNull, field: amount }] }
  - name: mongodb
    type: mongodb_sink
    dependsOn: [quality]
  - name: kafka
    type: kafka_sink
    dependsOn: [quality]
`

const message = (offset: number, value: string): KafkaMessage => ({
  key: null,
  value: Buffer.from(value),
  timestamp: "1700000000000",
  attributes: 0,
  offset: String(offset),
  headers: {},
})

const batch: Batch = {
  topic: "orders",
  partition: 4,
  messages: [message(41, '{"id":"a","n":5}'), message(42, '{"id":"b"}'), message(43, "not json")],
  firstOffset: "41",
  lastOffset: "43",
  highWatermark: "44",
  sequence: 1,
  afterSettled: true,
  generation: 1,
}

const batchAnnotations = {
  correlation_id: "orders-4-41-43",
  topic: "orders",
  partition: 4,
  offsets: "41-43",
}

/** The sink topic refuses the first send; the retries after it succeed. */
const flakyProducer = () => {
  const sent: Array<{ topic: string; messages: ReadonlyArray<Message> }> = []
  let sinkAttempts = 0
  const producer: ProducerShape = {
    maxMessageBytes: () => 1_048_588,
    send: (topic, messages) =>
      topic === "orders.clean" && sinkAttempts++ === 0
        ? Effect.fail(
            new KafkaProduceError({
              topic,
              messages: messages.length,
              kind: "transient",
              cause: "broker away",
            }),
          )
        : Effect.sync(() => void sent.push({ topic, messages })),
  }
  return { producer, sent }
}

describe("batch log lines", () => {
  it.live(
    "every line about a batch carries its correlation id, topic, partition and offsets; task lines their duration",
    () =>
      Effect.gen(function* () {
        const dir = mkdtempSync(join(tmpdir(), "batch-logs-"))
        writeFileSync(join(dir, "pipeline.yaml"), definition)
        const spec = yield* loadPipelineFile(join(dir, "pipeline.yaml"))
        const settings = yield* decodeSettings({
          KAFKA__BOOTSTRAP_SERVERS: "127.0.0.1:9092",
          KAFKA__TOPIC_SOURCE: "orders",
          KAFKA__TOPIC_SINK: "orders.clean",
          KAFKA__CONSUMER_GROUP: "pipeline",
          MONGODB__CONNECTION_STRING: "mongodb://127.0.0.1:27017/",
          MONGODB__DATABASE: "shop",
          MONGODB__COLLECTION: "orders",
          // The test runs on the real clock: the sink topic's failed first send is tried again after
          // the shortest wait (100 ms), not the default 5 s.
          PIPELINE__RETRY_DELAY_SECONDS: "0",
        })
        const { producer, sent } = flakyProducer()
        const mongo = yield* MongoDb
        const stack = yield* InMemory.MemoryStack
        const plan = yield* buildPlan(spec, liveSinks(mongo, producer, "orders.clean"), settings.pipeline)
        const processor = makeProcessor(plan, producer, {
          pipeline: settings.pipeline,
          maxMessageBytes: settings.kafka.maxMessageBytes,
          dlqTopic: "orders.dlq",
        })
        const { result: summary, lines } = yield* captureLogs(processor.handle(batch))

        assert.deepInclude(summary, { consumed: 3, valid: 1, invalid: 1, malformed: 1, deadLettered: 2 })
        // The dead letters go beside the sinks' writes: the order of the two sends is not fixed.
        assert.deepStrictEqual(sent.map((s) => [s.topic, s.messages.length]).sort(), [
          ["orders.clean", 1],
          ["orders.dlq", 2],
        ])
        assert.deepStrictEqual([...stack.documents.keys()], ["a"])
        const logged = parseJsonLines(lines)
        for (const line of logged)
          assert.deepInclude(line.annotations, batchAnnotations, String(line.message))
        const levels = new Set(logged.map((l) => l.level))
        assert.isTrue(levels.has("WARN"), "the failed sink attempt and the stall are logged")
        assert.isTrue(levels.has("DEBUG"))
        const tasks = logged.filter((l) => typeof l.annotations.duration_ms === "number")
        assert.deepStrictEqual(
          tasks.map((l) => [l.annotations.task, l.annotations.outcome]),
          [
            ["mapping", "Succeeded"],
            ["quality", "Succeeded"],
            ["mongodb", "Succeeded"],
            ["kafka", "Succeeded"],
          ],
        )
        // The sink topic's first send failed: its line counts the second attempt.
        assert.deepStrictEqual(
          tasks.map((l) => l.annotations.attempts),
          [1, 1, 1, 2],
        )
        for (const t of tasks) assert.match(String(t.message), /^task \w+ (succeeded|failed) in \d+ ms$/)
        assert.isTrue(logged.some((l) => l.message === "batch written"))
      }).pipe(Effect.provide(InMemory.layer())),
  )
})
