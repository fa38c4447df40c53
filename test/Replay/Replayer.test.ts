/**
 * The replay of a span of dead letters through the service's own processor, with the in-memory
 * MongoDB and producer: the dead letters are made by the shipped pipeline from generated records,
 * then replayed with a copy whose quantity rule allows what it refused. The dry run writes
 * nothing and counts what the replay then does; the replay writes each record from its original
 * source position, stamped with the replay's headers.
 */
import { readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import type { IHeaders, KafkaMessage, Message } from "kafkajs"
import { decodeSettings } from "../../src/Config/AppConfig.js"
import { loadPipelineFile } from "../../src/Config/PipelineFile.js"
import { encode, generate } from "../../src/Generator/Records.js"
import type { Batch } from "../../src/Kafka/KafkaSource.js"
import { positionField } from "../../src/Mongo/MongoSink.js"
import { WriteLanes } from "../../src/Pipeline/Lanes.js"
import { header } from "../../src/Pipeline/Messages.js"
import { buildPlan, liveSinks } from "../../src/Pipeline/PipelineDag.js"
import { makeProcessor } from "../../src/Pipeline/Processor.js"
import { PartitionStalls } from "../../src/Pipeline/Stalls.js"
import { replayHeader } from "../../src/Replay/Headers.js"
import { type ReplayOptions, resolveFlags } from "../../src/Replay/Options.js"
import { makeReplayer } from "../../src/Replay/Replayer.js"
import { reportText } from "../../src/Replay/Report.js"
import { memoryMongo } from "../support/memory/MongoDb.js"
import { memoryProducer } from "../support/memory/Producer.js"
import { State } from "../support/memory/State.js"

const settings = Effect.runSync(
  decodeSettings({
    KAFKA__BOOTSTRAP_SERVERS: "127.0.0.1:9092",
    KAFKA__TOPIC_SOURCE: "orders",
    KAFKA__TOPIC_SINK: "orders.clean",
    KAFKA__CONSUMER_GROUP: "pipeline",
    MONGODB__CONNECTION_STRING: "mongodb://127.0.0.1:27017/",
    MONGODB__DATABASE: "shop",
    MONGODB__COLLECTION: "orders",
  }),
)

const options = (dryRun: boolean, reason: ReadonlyArray<string> = []): ReplayOptions => {
  const resolved = resolveFlags(
    {
      topic: Option.none(),
      group: Option.none(),
      from: Option.none(),
      to: Option.none(),
      reason,
      key: [],
      dryRun,
      maxReplays: Option.none(),
      examples: Option.none(),
    },
    settings,
  )
  if (!("options" in resolved)) throw new Error(resolved.problems.join("; "))
  return resolved.options
}

const relaxedFile = () => {
  const file = join(tmpdir(), `relaxed-${process.pid}-${Date.now()}.yaml`)
  const shipped = "{ rule: Range, field: quantity, min: 1, max: 1000 }"
  const text = readFileSync("config/pipeline.yaml", "utf8")
  writeFileSync(file, text.replace(shipped, "{ rule: Range, field: quantity, min: 0, max: 10000 }"))
  return file
}

const records = [
  ...generate(
    {
      seed: 5,
      pattern: "mixed",
      invalidRatio: 0.4,
      duplicateRatio: 0,
      malformedRatio: 0.02,
      oversizedRatio: 0,
      oversizedBytes: 0,
      baseTime: Date.UTC(2026, 10, 27),
    },
    0,
    300,
  ),
]
const relaxedKeys = new Set(
  records.filter((r) => r.defect === "out_of_range" && r.field === "order.quantity").map((r) => r.key!),
)

/** What a message sent to a topic looks like once read back from it, at `offset`. */
const read = (message: Message, offset: number): KafkaMessage => ({
  key: message.key === null || message.key === undefined ? null : Buffer.from(message.key),
  value: message.value === null || message.value === undefined ? null : Buffer.from(message.value),
  timestamp: "1796000009999",
  attributes: 0,
  offset: String(offset),
  headers: (message.headers ?? {}) as IHeaders,
})

/** The dead letters the shipped pipeline makes of the records (read from partition 1 of the source at offsets 500...). */
const deadLetters = Effect.gen(function* () {
  const state = new State()
  const spec = yield* loadPipelineFile("config/pipeline.yaml")
  const producer = memoryProducer(state)
  const plan = yield* buildPlan(
    spec,
    liveSinks(memoryMongo(state), producer, "orders.clean"),
    settings.pipeline,
  )
  const processor = makeProcessor(
    plan,
    producer,
    { pipeline: settings.pipeline, maxMessageBytes: settings.kafka.maxMessageBytes, dlqTopic: "orders.dlq" },
    new PartitionStalls(),
    new WriteLanes(),
  )
  const messages: KafkaMessage[] = records.map((r, i) => ({
    key: r.key === null ? null : Buffer.from(r.key),
    value: encode(r),
    timestamp: "1796000000000",
    attributes: 0,
    offset: String(500 + i),
    headers: { "x-index": String(r.index) },
  }))
  const batch: Batch = {
    topic: "orders",
    partition: 1,
    messages,
    firstOffset: "500",
    lastOffset: String(499 + messages.length),
    highWatermark: "0",
    sequence: 1,
    afterSettled: true,
    generation: 1,
  }
  yield* processor.handle(batch)
  return state.sent.filter((s) => s.topic === "orders.dlq").map((s, i) => read(s.message, i))
})

const replayed = (dryRun: boolean, reason: ReadonlyArray<string> = []) =>
  Effect.gen(function* () {
    const letters = yield* deadLetters
    const state = new State()
    const spec = yield* loadPipelineFile(relaxedFile())
    const { handle, tally } = yield* makeReplayer(
      settings,
      spec,
      options(dryRun, reason),
      "fp-1",
      { mongo: memoryMongo(state), producer: memoryProducer(state), transactions: undefined },
      { ledger: "orders.dlq.replayed", replayed: new Set(), holdAt: new Map() },
    )
    const commit = yield* handle({
      partition: 0,
      messages: letters,
      firstOffset: "0",
      lastOffset: String(letters.length - 1),
      generation: 1,
      highWatermark: String(letters.length),
    })
    return { letters, state, tally, commit }
  })

describe("a span of dead letters, replayed", () => {
  it.effect("dry: writes nothing, and counts by outcome and by reason, with examples", () =>
    Effect.gen(function* () {
      const { letters, state, tally } = yield* replayed(true)
      assert.isAbove(relaxedKeys.size, 3)
      assert.deepStrictEqual(state.sent, [])
      assert.strictEqual(state.documents.size, 0)
      const t = tally.totals
      assert.strictEqual(t.read, letters.length)
      assert.strictEqual(t.replayed, letters.length)
      assert.strictEqual(t.written, relaxedKeys.size)
      assert.strictEqual(t.stillInvalid, letters.length - relaxedKeys.size)
      assert.deepStrictEqual(tally.replayedBy.get("validation / quality.quantity [Range]"), {
        written: relaxedKeys.size,
        still_invalid: 0,
        duplicate: 0,
        filtered: 0,
        already_committed: 0,
      })
      assert.strictEqual(
        [...tally.stillInvalidBy.values()].reduce((a, b) => a + b, 0) >= t.stillInvalid,
        true,
        "every record still invalid counts under each of its reasons",
      )
      const report = reportText(tally, { dryRun: true, seconds: 1, complete: true, maxReplays: 3 })
      assert.include(report, "Dry run: nothing was written and nothing was committed.")
      assert.include(report, `${relaxedKeys.size}  would be written to the sinks`)
      assert.include(report, "parse / parse [json]")
      assert.strictEqual(tally.examples.get("written")!.length, 3)
      assert.strictEqual(tally.examples.get("still_invalid")!.length, 3)
    }),
  )

  it.effect(
    "live: what the dry run said, each record written from its original source position, stamped",
    () =>
      Effect.gen(function* () {
        const dry = (yield* replayed(true)).tally.totals
        const { letters, state, tally } = yield* replayed(false)
        assert.deepStrictEqual(tally.totals, dry)
        assert.deepStrictEqual(new Set(state.documents.keys()), relaxedKeys)
        const letterOf = new Map(letters.map((l) => [l.key?.toString(), l]))
        for (const [id, document] of state.documents) {
          const original = letterOf.get(id)!
          assert.deepStrictEqual(document[positionField], {
            topic: "orders",
            partition: 1,
            offset: Number(original.headers![header.sourceOffset]!.toString()),
          })
        }
        const sink = state.sent.filter((s) => s.topic === "orders.clean")
        assert.strictEqual(sink.length, relaxedKeys.size)
        const again = state.sent.filter((s) => s.topic === "orders.dlq")
        assert.strictEqual(again.length, letters.length - relaxedKeys.size)
        for (const { message } of [...sink, ...again]) {
          const headers = message.headers!
          assert.strictEqual(headers[header.sourceTopic], "orders")
          assert.strictEqual(headers[header.sourcePartition], "1")
          assert.strictEqual(headers[replayHeader.count], "1")
          assert.strictEqual(headers[replayHeader.pipeline], "fp-1")
          assert.match(String(headers[replayHeader.from]), /^orders\.dlq\/0\/\d+$/)
          assert.isDefined(headers["x-index"], "the original's own headers")
        }
        assert.isUndefined(
          sink[0]!.message.headers![header.errorStage],
          "no dead-letter header on a sink message",
        )
      }),
  )

  it.effect(
    "each replayed dead letter goes in the ledger; the group's offset stops at the first one --reason leaves out",
    () =>
      Effect.gen(function* () {
        const { letters, state, tally, commit } = yield* replayed(false, ["quantity"])
        const chosen = tally.totals.replayed
        assert.isAbove(chosen, 0)
        assert.isAbove(tally.totals.passedOver.not_selected, 0)
        const ledger = state.sent.filter((s) => s.topic === "orders.dlq.replayed")
        assert.strictEqual(ledger.length, chosen)
        const outcomes = ledger.map(
          (l) => (JSON.parse(String(l.message.value)) as { outcome: string }).outcome,
        )
        assert.strictEqual(outcomes.filter((o) => o === "written").length, relaxedKeys.size)
        const firstLeftOut = letters.findIndex((l) => {
          const reasons = l.headers?.[header.errorReasons]?.toString() ?? ""
          return !reasons.includes('"field":"quantity"')
        })
        assert.strictEqual(
          commit,
          BigInt(firstLeftOut),
          "the first dead letter left out is where the group stays",
        )

        const everything = yield* replayed(false)
        assert.strictEqual(
          everything.commit,
          BigInt(everything.letters.length),
          "nothing left out: past the span",
        )
      }),
  )
})
