/**
 * Branches, merges and routing at run time, over the in-memory MongoDB and producer
 * (test/support/InMemory.ts) with the live sinks: the branched example (config/examples/
 * branched.yaml) leaves MongoDB exactly as the shipped chain does for the same records, while
 * the sink topic gets only the paid orders, projected; a record no sink's branch carries is
 * counted as filtered; merges follow their rules; and the branches of the built DAG overlap in
 * time under the executor.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import type { KafkaMessage } from "kafkajs"
import { AppConfig } from "../../src/Config/AppConfig.js"
import { loadPipelineFile } from "../../src/Config/PipelineFile.js"
import type { PipelineSpec } from "../../src/Config/PipelineSpec.js"
import * as Dag from "../../src/Dag/Dag.js"
import * as Executor from "../../src/Dag/Executor.js"
import * as PipelineContext from "../../src/Dag/PipelineContext.js"
import * as Task from "../../src/Dag/Task.js"
import { makeRecord, type PipelineRecord } from "../../src/Domain/Record.js"
import { defaultRecordOptions, encode, type GeneratedRecord, generate } from "../../src/Generator/Records.js"
import type { Batch } from "../../src/Kafka/KafkaSource.js"
import { KafkaProducer } from "../../src/Kafka/Producer.js"
import { MongoDb } from "../../src/Mongo/MongoDb.js"
import { mergeBranches } from "../../src/Pipeline/Merge.js"
import { buildPlan, liveSinks } from "../../src/Pipeline/PipelineDag.js"
import { makeProcessor } from "../../src/Pipeline/Processor.js"
import * as InMemory from "../support/InMemory.js"

const records: ReadonlyArray<GeneratedRecord> = [
  ...generate({ ...defaultRecordOptions, seed: 17, malformedRatio: 0.03 }, 0, 100),
]

const batchOf = (records: ReadonlyArray<GeneratedRecord>): Batch => {
  const messages: KafkaMessage[] = records.map((r, i) => ({
    key: null,
    value: encode(r),
    timestamp: "1795000000000",
    attributes: 0,
    offset: String(i),
    headers: { "x-index": String(r.index) },
  }))
  return {
    topic: "orders",
    partition: 0,
    messages,
    firstOffset: "0",
    lastOffset: String(messages.length - 1),
    highWatermark: String(messages.length),
    sequence: 1,
    afterSettled: true,
    generation: 1,
  }
}

/** One batch of `records` through `spec`, with fresh in-memory servers: the summary and what each got. */
const runOnce = (spec: PipelineSpec) =>
  Effect.gen(function* () {
    const settings = yield* AppConfig
    const stack = yield* InMemory.MemoryStack
    const producer = yield* KafkaProducer
    const plan = yield* buildPlan(
      spec,
      liveSinks(yield* MongoDb, producer, settings.kafka.topicSink),
      settings.pipeline,
    )
    const processor = makeProcessor(plan, producer, {
      pipeline: settings.pipeline,
      maxMessageBytes: settings.kafka.maxMessageBytes,
      dlqTopic: settings.kafka.topicDlq,
    })
    const summary = yield* processor.handle(batchOf(records))
    return {
      summary,
      documents: new Map(stack.documents),
      sink: stack
        .sent(settings.kafka.topicSink)
        .map((m) => JSON.parse(String(m.value)) as Record<string, unknown>),
      dlq: stack.sent(settings.kafka.topicDlq).map((m) => String(m.headers?.["x-index"])),
    }
  }).pipe(Effect.provide(InMemory.layer()))

const validKeys = (filter: (r: GeneratedRecord) => boolean = () => true) =>
  records
    .filter((r) => r.kind === "valid" && filter(r))
    .map((r) => r.key!)
    .sort()
const statusOf = (r: GeneratedRecord) =>
  r.value instanceof Uint8Array ? undefined : (r.value as { status?: unknown }).status

describe("branches, merges and routing", () => {
  it.effect(
    "the branched example: MongoDB as with the chain, the sink topic only paid orders, projected",
    () =>
      Effect.gen(function* () {
        const chain = yield* runOnce(yield* loadPipelineFile("config/pipeline.yaml"))
        const branched = yield* runOnce(yield* loadPipelineFile("config/examples/branched.yaml"))

        assert.deepStrictEqual([...branched.documents.keys()].sort(), validKeys())
        assert.deepStrictEqual(
          branched.documents,
          chain.documents,
          "the merge leaves the same documents as the chain",
        )
        const paid = validKeys((r) => statusOf(r) === "paid")
        assert.isAbove(paid.length, 0)
        assert.isBelow(paid.length, validKeys().length)
        assert.deepStrictEqual(branched.sink.map((m) => String(m.event_id)).sort(), paid)
        for (const message of branched.sink) {
          assert.deepStrictEqual(Object.keys(message).sort(), [
            "amount",
            "created_at",
            "currency",
            "event_id",
            "status",
          ])
          assert.strictEqual(message.status, "paid")
          assert.strictEqual(message.amount, chain.documents.get(String(message.event_id))?.amount)
        }
        assert.deepStrictEqual(branched.dlq.sort(), chain.dlq.sort())
        const s = branched.summary
        // MongoDB carries every valid record, so none is filtered.
        assert.deepInclude(s, {
          valid: validKeys().length,
          filtered: 0,
          written: { mongodb: validKeys().length, kafka: paid.length },
        })
        assert.strictEqual(
          s.valid + s.invalid + s.malformed + s.duplicates + s.filtered + s.rejectedBySink,
          s.consumed,
        )
      }),
  )

  it.effect("counts as filtered a record that no sink's branch carries", () =>
    Effect.gen(function* () {
      const example = yield* loadPipelineFile("config/examples/branched.yaml")
      // MongoDB on the paid branch too: only paid orders reach any sink.
      const spec: PipelineSpec = {
        ...example,
        tasks: example.tasks.map((t) => (t.type === "mongodb_sink" ? { ...t, dependsOn: ["paid"] } : t)),
      }
      const { summary, documents, sink } = yield* runOnce(spec)
      const paid = validKeys((r) => statusOf(r) === "paid")
      assert.deepStrictEqual([...documents.keys()].sort(), paid)
      assert.strictEqual(sink.length, paid.length)
      assert.strictEqual(summary.valid, paid.length)
      assert.strictEqual(summary.filtered, validKeys().length - paid.length)
      assert.strictEqual(
        summary.valid + summary.invalid + summary.malformed + summary.duplicates + summary.filtered,
        summary.consumed,
      )
    }),
  )

  it("merges: each branch's own fields, removals included; the worst status; every reason once; a duplicate mark kept", () => {
    const base = (status: PipelineRecord["status"] = "valid"): PipelineRecord => ({
      ...makeRecord("7", { a: 1, b: { c: 2, d: 3 }, moved: "x", keep: true }),
      status,
    })
    const left: PipelineRecord = { ...base(), value: { a: 10, b: { c: 2, d: 3 }, moved: "x", keep: true } }
    const right: PipelineRecord = {
      ...base("invalid"),
      value: { a: 1, b: { c: 20, d: 3 }, keep: true, target: "x" },
      reasons: [{ task: "right", rule: "Range", message: "too big" }],
    }
    const marked: PipelineRecord = {
      ...base("duplicate"),
      key: "k-7",
      reasons: [{ task: "right", rule: "Range", message: "too big" }],
    }
    const outputs: Record<string, ReadonlyArray<PipelineRecord>> = {
      left: [left],
      right: [right],
      marks: [marked],
    }
    const merge = mergeBranches("left", [
      { upstream: "right", writes: ["b.c", "target", "moved"] },
      { upstream: "marks", writes: [] },
    ])
    const [merged] = merge((name) => outputs[name]!)
    assert.deepStrictEqual(merged!.value, { a: 10, b: { c: 20, d: 3 }, keep: true, target: "x" })
    assert.strictEqual(merged!.status, "invalid")
    assert.deepStrictEqual(merged!.reasons, [{ task: "right", rule: "Range", message: "too big" }])
    assert.strictEqual(merged!.key, "k-7")
    // The versions it came from are untouched.
    assert.deepStrictEqual(left.value, { a: 10, b: { c: 2, d: 3 }, moved: "x", keep: true })
    const [duplicate] = mergeBranches("left", [{ upstream: "marks", writes: [] }])((name) => outputs[name]!)
    assert.strictEqual(duplicate!.status, "duplicate")
  })

  it.effect("the two branches of the branched example overlap in time under the executor", () =>
    Effect.gen(function* () {
      const settings = yield* AppConfig
      const plan = yield* buildPlan(
        yield* loadPipelineFile("config/examples/branched.yaml"),
        liveSinks(yield* MongoDb, yield* KafkaProducer, settings.kafka.topicSink),
        settings.pipeline,
      )
      // The same graph, each task taking a second of (test) time, recording when it ran.
      const ran: Array<readonly [string, "start" | "end", number]> = []
      const clock = () => Effect.clockWith((c) => Effect.sync(() => c.currentTimeMillisUnsafe()))
      const timed = plan.dag.nodes.map((node) =>
        Task.make({
          name: node.name,
          dependsOn: [...node.dependsOn],
          run: () =>
            Effect.gen(function* () {
              ran.push([node.name, "start", yield* clock()])
              yield* Effect.sleep("1 second")
              ran.push([node.name, "end", yield* clock()])
            }),
        }),
      )
      const dag = yield* Dag.make(timed)
      const context = yield* PipelineContext.make({
        correlationId: "c",
        source: { topic: "t", partition: 0, firstOffset: "0", lastOffset: "0" },
        payload: null,
      })
      const fiber = yield* Effect.forkChild(
        Executor.run(dag, context, { maxWorkers: settings.pipeline.maxWorkers }),
      )
      yield* TestClock.adjust("20 seconds")
      const result = yield* Fiber.join(fiber)
      assert.isTrue(result.allSucceeded)
      const at = (name: string, what: "start" | "end") => ran.find(([n, w]) => n === name && w === what)?.[2]
      assert.strictEqual(at("conversion", "start"), at("standardization", "start"))
      assert.isBelow(at("standardization", "start")!, at("conversion", "end")!)
      assert.strictEqual(at("mongodb", "start"), at("kafka", "start"))
      // The merge waits for both branches.
      assert.isAtLeast(
        at("dedupe", "start")!,
        Math.max(at("conversion", "end")!, at("standardization", "end")!),
      )
    }).pipe(Effect.provide(InMemory.layer())),
  )
})
