/**
 * The processor with in-memory sinks and producer: every message of a batch is accounted for
 * exactly once, sink rejections go to the dead-letter topic, a failed transform sends the
 * whole batch there, and a failing sink stalls the batch (under TestClock) until it succeeds.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import type { KafkaMessage, Message } from "kafkajs"
import { decodeSettings } from "../../src/Config/AppConfig.js"
import { loadPipelineFile } from "../../src/Config/PipelineFile.js"
import type { PipelineSpec } from "../../src/Config/PipelineSpec.js"
import { defaultRecordOptions, encode, type GeneratedRecord, generate } from "../../src/Generator/Records.js"
import { KafkaProduceError } from "../../src/Kafka/Errors.js"
import type { Batch } from "../../src/Kafka/KafkaSource.js"
import type { ProducerShape } from "../../src/Kafka/Producer.js"
import { buildPlan, type SinkFactories, type StageError } from "../../src/Pipeline/PipelineDag.js"
import { makeProcessor } from "../../src/Pipeline/Processor.js"
import type { Sink, SinkOutcome, SinkStage } from "../../src/Pipeline/Sinks.js"

class SinkDown extends Error {
  readonly kind = "transient"
  readonly retryable = true
}

const settingsEffect = decodeSettings({
  KAFKA__BOOTSTRAP_SERVERS: "127.0.0.1:9092",
  KAFKA__TOPIC_SOURCE: "orders",
  KAFKA__TOPIC_SINK: "orders.clean",
  KAFKA__CONSUMER_GROUP: "g",
  MONGODB__CONNECTION_STRING: "mongodb://127.0.0.1:27017/",
  MONGODB__DATABASE: "db",
  MONGODB__COLLECTION: "c",
  // A stalled sink is tried again after 1, 2, 4... s (5 s, 10 s... by default), within the ten
  // 10-second steps of TestClock that the stall test allows.
  PIPELINE__RETRY_DELAY_SECONDS: "1",
  // Under the generator's oversized records (6000 bytes, below), so that they are dead-lettered at parse.
  KAFKA__MAX_MESSAGE_BYTES: "5000",
})

const toBatch = (records: ReadonlyArray<GeneratedRecord>): Batch => {
  const messages: KafkaMessage[] = records.map((r, i) => ({
    key: r.key === null ? null : Buffer.from(r.key),
    value: encode(r),
    timestamp: "1700000000000",
    attributes: 0,
    offset: String(100 + i),
    headers: {},
  }))
  return {
    topic: "orders",
    partition: 0,
    messages,
    firstOffset: "100",
    lastOffset: String(99 + messages.length),
    highWatermark: "0",
    sequence: 1,
    afterSettled: true,
    generation: 1,
  }
}

interface Harness {
  readonly written: Map<string, Array<string>>
  readonly sent: Array<{ readonly topic: string; readonly messages: ReadonlyArray<Message> }>
  readonly attempts: Map<string, number>
}

/** Sinks that remember the keys they took; `failFirst` attempts of a sink fail, `reject` keys are data errors. */
const harness = (
  options: {
    readonly failFirst?: Record<string, number>
    readonly reject?: ReadonlySet<string>
    /** Keys whose presence makes a sink throw (a defect) or fail with an error of no known kind. */
    readonly throwOn?: Record<string, string>
    readonly unknownOn?: Record<string, string>
    /** Keys a sink says it can never take (a limit). */
    readonly refuse?: Record<string, string>
  } = {},
) => {
  const h: Harness = { written: new Map(), sent: [], attempts: new Map() }
  const sink = (name: string, stage: SinkStage): Sink<StageError> => ({
    name,
    stage,
    refuses: ({ key }) =>
      options.refuse?.[name] === key
        ? { task: name, rule: "size", message: "too large for this sink" }
        : undefined,
    write: (keyed): Effect.Effect<SinkOutcome, StageError> =>
      Effect.suspend(() => {
        const attempt = (h.attempts.get(name) ?? 0) + 1
        h.attempts.set(name, attempt)
        if (attempt <= (options.failFirst?.[name] ?? 0)) return Effect.fail(new SinkDown(`${name} is down`))
        const keys = keyed.map((k) => k.key)
        if (keys.includes(options.throwOn?.[name] ?? "\u0000"))
          throw new RangeError("Maximum call stack size exceeded")
        if (keys.includes(options.unknownOn?.[name] ?? "\u0000"))
          return Effect.fail(Object.assign(new Error("something odd"), { retryable: true }))
        const valid = keyed.map((k) => k.record)
        const rejected = valid.filter((r) => options.reject?.has(String(r.value.event_id)) === true)
        h.written.set(name, [
          ...(h.written.get(name) ?? []),
          ...valid.filter((r) => !rejected.includes(r)).map((r) => String(r.value.event_id)),
        ])
        return Effect.succeed({
          written: valid.length - rejected.length,
          rejected: rejected.map((record) => ({
            record,
            reason: { task: name, rule: "mongodb_error_2", message: "bad" },
          })),
        })
      }),
  })
  const factories: SinkFactories = {
    mongodb_sink: (name) => sink(name, "mongodb_sink"),
    kafka_sink: (name) => sink(name, "kafka_sink"),
  }
  const producer: ProducerShape = {
    maxMessageBytes: () => 1_048_588,
    send: (topic, messages) => Effect.sync(() => void h.sent.push({ topic, messages })),
  }
  return { h, factories, producer }
}

const processorFor = (spec: PipelineSpec, h: ReturnType<typeof harness>) =>
  Effect.gen(function* () {
    const settings = yield* settingsEffect
    const plan = yield* buildPlan(spec, h.factories, settings.pipeline)
    return makeProcessor(plan, h.producer, {
      pipeline: settings.pipeline,
      maxMessageBytes: settings.kafka.maxMessageBytes,
      dlqTopic: "orders.dlq",
    })
  })

const records = [
  ...generate(
    {
      ...defaultRecordOptions,
      seed: 5,
      malformedRatio: 0.05,
      oversizedRatio: 0.02,
      oversizedBytes: 6000,
      duplicateRatio: 0.1,
    },
    0,
    300,
  ),
]
const count = (kind: GeneratedRecord["kind"]) => records.filter((r) => r.kind === kind).length
const dlqOf = (h: Harness) => h.sent.filter((s) => s.topic === "orders.dlq").flatMap((s) => s.messages)

describe("Processor", () => {
  it.effect("accounts for every message exactly once", () =>
    Effect.gen(function* () {
      const spec = yield* loadPipelineFile("config/pipeline.yaml")
      const test = harness()
      const processor = yield* processorFor(spec, test)
      const summary = yield* processor.handle(toBatch(records))

      assert.strictEqual(summary.consumed, records.length)
      assert.strictEqual(summary.valid, count("valid"))
      assert.strictEqual(summary.duplicates, count("duplicate"))
      assert.strictEqual(summary.invalid, count("invalid"))
      assert.strictEqual(summary.malformed, count("malformed") + count("oversized"))
      assert.strictEqual(summary.valid + summary.duplicates + summary.deadLettered, records.length)
      const validKeys = records.filter((r) => r.kind === "valid").map((r) => r.key!)
      assert.deepStrictEqual(test.h.written.get("mongodb"), validKeys)
      assert.deepStrictEqual(test.h.written.get("kafka"), validKeys)
      assert.strictEqual(dlqOf(test.h).length, summary.deadLettered)
    }),
  )

  it.effect("sends a record a sink rejects to the dead-letter topic with the sink's reason", () =>
    Effect.gen(function* () {
      const spec = yield* loadPipelineFile("config/pipeline.yaml")
      const victim = records.find((r) => r.kind === "valid")!.key!
      const test = harness({ reject: new Set([victim]) })
      const summary = yield* (yield* processorFor(spec, test)).handle(toBatch(records))
      assert.strictEqual(summary.rejectedBySink, 1)
      assert.strictEqual(summary.valid, count("valid") - 1)
      const dead = dlqOf(test.h).find((m) => String(m.key) === victim)!
      assert.strictEqual(String(dead.headers?.["pipeline.error.stage"]), "mongodb_sink")
      assert.include(String(dead.headers?.["pipeline.error.reasons"]), "mongodb_error_2")
    }),
  )

  it.effect("sends the whole batch to the dead-letter topic when a transform fails, and writes nothing", () =>
    Effect.gen(function* () {
      const base = yield* loadPipelineFile("config/pipeline.yaml")
      const spec: PipelineSpec = {
        ...base,
        tasks: base.tasks.map((t) =>
          t.type === "data_quality"
            ? {
                ...t,
                settings: { ...t.settings, threshold: { maxInvalidRatio: 0, action: "fail", minRecords: 1 } },
              }
            : t,
        ),
      }
      const test = harness()
      const summary = yield* (yield* processorFor(spec, test)).handle(toBatch(records))
      const parsed = records.length - count("malformed") - count("oversized")
      assert.strictEqual(summary.failedBatch, parsed)
      assert.strictEqual(summary.deadLettered, records.length)
      assert.isUndefined(test.h.written.get("mongodb"))
      const stages = new Set(dlqOf(test.h).map((m) => String(m.headers?.["pipeline.error.stage"])))
      assert.deepStrictEqual([...stages].sort(), ["parse", "task"])
    }),
  )

  it.effect("stalls on a sink that keeps failing and writes the same batch once it recovers", () =>
    Effect.gen(function* () {
      const spec = yield* loadPipelineFile("config/pipeline.yaml")
      // A transient failure stalls the batch and is tried again without end: attempt 6 succeeds.
      const test = harness({ failFirst: { mongodb: 5 } })
      const processor = yield* processorFor(spec, test)
      const fiber = yield* Effect.forkChild(processor.handle(toBatch(records)))
      for (let i = 0; i < 10 && fiber.pollUnsafe() === undefined; i++) yield* TestClock.adjust("10 seconds")
      const summary = yield* Fiber.join(fiber)
      assert.strictEqual(test.h.attempts.get("mongodb"), 6)
      assert.strictEqual(test.h.attempts.get("kafka"), 1)
      assert.strictEqual(summary.valid, count("valid"))
      assert.deepStrictEqual(test.h.written.get("mongodb")?.length, count("valid"))
    }),
  )

  it.effect("isolates a record that makes a sink throw: only that record goes to the dead-letter topic", () =>
    Effect.gen(function* () {
      const spec = yield* loadPipelineFile("config/pipeline.yaml")
      const victim = records.find((r) => r.kind === "valid")!.key!
      const test = harness({ throwOn: { kafka: victim } })
      const summary = yield* (yield* processorFor(spec, test)).handle(toBatch(records))
      assert.strictEqual(summary.rejectedBySink, 1)
      const validKeys = records.filter((r) => r.kind === "valid").map((r) => r.key!)
      assert.sameMembers(
        [...(test.h.written.get("kafka") ?? [])],
        validKeys.filter((k) => k !== victim),
      )
      const dead = dlqOf(test.h).find((m) => String(m.key) === victim)!
      assert.strictEqual(String(dead.headers?.["pipeline.error.stage"]), "kafka_sink")
      assert.include(String(dead.headers?.["pipeline.error.message"]), "Maximum call stack size exceeded")
      assert.strictEqual(summary.valid + summary.duplicates + summary.deadLettered, records.length)
    }),
  )

  it.effect("retries an error of unknown kind a bounded number of times, then isolates the record", () =>
    Effect.gen(function* () {
      const spec = yield* loadPipelineFile("config/pipeline.yaml")
      const victim = records.find((r) => r.kind === "valid")!.key!
      const test = harness({ unknownOn: { mongodb: victim } })
      const fiber = yield* Effect.forkChild((yield* processorFor(spec, test)).handle(toBatch(records)))
      for (let i = 0; i < 200 && fiber.pollUnsafe() === undefined; i++) yield* TestClock.adjust("10 seconds")
      const summary = yield* Fiber.join(fiber)
      assert.strictEqual(summary.rejectedBySink, 1)
      const dead = dlqOf(test.h).find((m) => String(m.key) === victim)!
      assert.strictEqual(String(dead.headers?.["pipeline.error.stage"]), "mongodb_sink")
      assert.include(String(dead.headers?.["pipeline.error.reasons"]), "unknown_error")
      // The sink's attempts (6, by its retry in config/pipeline.yaml), then two writes per halving
      // (about log2 of the batch's records): the halves are not retried again for an unknown error.
      assert.isBelow(test.h.attempts.get("mongodb")!, 30)
    }),
  )

  it.effect("a record one sink can never take reaches neither sink", () =>
    Effect.gen(function* () {
      const spec = yield* loadPipelineFile("config/pipeline.yaml")
      const victim = records.find((r) => r.kind === "valid")!.key!
      const test = harness({ refuse: { kafka: victim } })
      const summary = yield* (yield* processorFor(spec, test)).handle(toBatch(records))
      assert.notInclude(test.h.written.get("mongodb")!, victim)
      assert.notInclude(test.h.written.get("kafka")!, victim)
      const dead = dlqOf(test.h).find((m) => String(m.key) === victim)!
      assert.strictEqual(String(dead.headers?.["pipeline.error.stage"]), "kafka_sink")
      assert.strictEqual(summary.rejectedBySink, 1)
    }),
  )

  it.effect(
    "a throw outside the sinks sends the batch to the dead-letter topic instead of ending the worker",
    () =>
      Effect.gen(function* () {
        const spec = yield* loadPipelineFile("config/pipeline.yaml")
        const test = harness()
        const settings = yield* settingsEffect
        const plan = yield* buildPlan(spec, test.factories, settings.pipeline)
        const broken = {
          ...plan,
          admit: () => {
            throw new TypeError("a bug")
          },
        }
        const processor = makeProcessor(broken, test.producer, {
          pipeline: settings.pipeline,
          maxMessageBytes: settings.kafka.maxMessageBytes,
          dlqTopic: "orders.dlq",
        })
        const summary = yield* processor.handle(toBatch(records))
        assert.strictEqual(summary.deadLettered, records.length)
        assert.strictEqual(summary.failedBatch, records.length)
        const stages = new Set(dlqOf(test.h).map((m) => String(m.headers?.["pipeline.error.stage"])))
        assert.deepStrictEqual([...stages], ["task"])
      }),
  )

  it.effect(
    "a dead-letter topic that refuses writes for an unknown reason stalls the batch; no dead letter is dropped",
    () =>
      Effect.gen(function* () {
        const spec = yield* loadPipelineFile("config/pipeline.yaml")
        const test = harness()
        // Not authorised, as a broker with ACLs answers: neither transient nor caused by the records.
        let refusals = 12
        const producer: ProducerShape = {
          ...test.producer,
          send: (topic, messages) =>
            topic === "orders.dlq" && refusals-- > 0
              ? Effect.fail(
                  new KafkaProduceError({
                    topic,
                    messages: messages.length,
                    kind: "unknown",
                    cause: new Error("Not authorized to access topics: [Topic authorization failed]"),
                  }),
                )
              : test.producer.send(topic, messages),
        }
        const processor = yield* processorFor(spec, { ...test, producer })
        const fiber = yield* Effect.forkChild(processor.handle(toBatch(records)))
        for (let i = 0; i < 20 && refusals > 0; i++) {
          yield* TestClock.adjust("10 seconds")
          if (refusals > 0)
            assert.isUndefined(fiber.pollUnsafe(), "the batch is not done while its dead letters are refused")
        }
        for (let i = 0; i < 20 && fiber.pollUnsafe() === undefined; i++) yield* TestClock.adjust("10 seconds")
        const summary = yield* Fiber.join(fiber)
        assert.isAtMost(refusals, 0)
        const letters = dlqOf(test.h)
        assert.strictEqual(letters.length, summary.deadLettered)
        // Every one with its original value: none sent bare, none dropped.
        assert.isTrue(
          letters.every(
            (m) => m.value !== null && String(m.headers?.["pipeline.error.stage"]) !== "undefined",
          ),
        )
        assert.strictEqual(summary.deadLettered, count("invalid") + count("malformed") + count("oversized"))
      }),
  )
})
