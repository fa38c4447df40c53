/**
 * The service's wiring, in-process over the in-memory layers (test/support/InMemory.ts):
 * runPipeline with the shipped pipeline takes batches from the source, and every record ends in
 * MongoDB + the sink topic, the dead-letter topic, or the duplicate count, with the offsets
 * committed after; a MongoDB that is away stalls the partition (nothing committed) until it
 * returns. Each test starts from an empty stack (`reset`), so none depends on another.
 */
import { mkdtempSync, readFileSync, renameSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, it, layer } from "@effect/vitest"
import { Clock, Effect, Fiber, Metric } from "effect"
import { TestClock } from "effect/testing"
import { loadPipelineFile } from "../../src/Config/PipelineFile.js"
import { defaultRecordOptions, encode, type GeneratedRecord, generate } from "../../src/Generator/Records.js"
import * as Metrics from "../../src/Observability/Metrics.js"
import { Readiness } from "../../src/Observability/Readiness.js"
import { readinessLayer, runPipeline } from "../../src/Pipeline/Service.js"
import { Stalls } from "../../src/Pipeline/Stalls.js"
import * as InMemory from "../support/InMemory.js"

const records: ReadonlyArray<GeneratedRecord> = [
  ...generate({ ...defaultRecordOptions, seed: 31, malformedRatio: 0.03 }, 0, 450),
]
const keysOf = (kind: GeneratedRecord["kind"]) =>
  [...new Set(records.filter((r) => r.kind === kind).map((r) => r.key!))].sort()

/** The records over two partitions, with their index in an `x-index` header. */
const appendAll = (stack: InMemory.MemoryStackShape) =>
  Effect.forEach(
    [0, 1],
    (partition) => {
      const mine = records.filter((r) => r.index % 2 === partition)
      return stack.append(
        partition,
        mine.map((r) => encode(r)),
        (i) => ({ "x-index": String(mine[i]!.index) }),
      )
    },
    { discard: true },
  )

const started = Effect.gen(function* () {
  const stack = yield* InMemory.MemoryStack
  yield* stack.reset
  const spec = yield* loadPipelineFile("config/pipeline.yaml")
  const fiber = yield* Effect.forkScoped(runPipeline(spec).pipe(Effect.scoped))
  return { stack, fiber }
})

layer(InMemory.layer())("runPipeline, in-process", (it) => {
  it.effect("accounts for every record and commits what it handled", () =>
    Effect.gen(function* () {
      const { stack, fiber } = yield* started
      yield* appendAll(stack)
      yield* stack.untilCommitted

      assert.deepStrictEqual([...stack.documents.keys()].sort(), keysOf("valid"))
      const sink = stack.sent("orders.clean")
      assert.deepStrictEqual(sink.map((m) => String(m.key)).sort(), keysOf("valid"))
      const dead = stack.sent("orders.dlq").map((m) => String(m.headers?.["x-index"]))
      const expectedDead = records
        .filter((r) => r.kind === "invalid" || r.kind === "malformed")
        .map((r) => String(r.index))
      assert.deepStrictEqual(dead.sort(), expectedDead.sort())
      const duplicates = records.filter((r) => r.kind === "duplicate").length
      assert.strictEqual(sink.length + dead.length + duplicates, records.length)
      assert.deepStrictEqual(
        [stack.committed(0), stack.committed(1)],
        [records.filter((r) => r.index % 2 === 0).length, records.filter((r) => r.index % 2 === 1).length],
      )
      yield* Fiber.interrupt(fiber)
    }),
  )

  it.effect("stalls a partition while MongoDB is away, commits nothing, and catches up when it returns", () =>
    Effect.gen(function* () {
      const { stack, fiber } = yield* started
      const stalls = yield* Stalls
      stack.mongoDown(true)
      yield* stack.append(
        0,
        records.slice(0, 100).map((r) => encode(r)),
      )
      // The MongoDB task's own retries, then the stall's backoff: well past both.
      for (let i = 0; i < 20; i++) yield* TestClock.adjust("10 seconds")
      assert.strictEqual(stack.committed(0), 0)
      assert.strictEqual(stalls.current.length, 1)
      assert.strictEqual(stalls.current[0]?.partition, 0)
      assert.strictEqual(stalls.current[0]?.what, "the mongodb sink")
      assert.strictEqual(stack.documents.size, 0)

      stack.mongoDown(false)
      yield* TestClock.adjust("2 minutes")
      yield* stack.untilCommitted
      assert.strictEqual(stack.committed(0), 100)
      assert.strictEqual(stalls.current.length, 0)
      const valid = new Set(
        records
          .slice(0, 100)
          .filter((r) => r.kind === "valid")
          .map((r) => r.key!),
      )
      assert.strictEqual(stack.documents.size, valid.size)
      yield* Fiber.interrupt(fiber)
    }),
  )
  it.effect(
    "/readyz says so while the source cannot commit (the group lost this member), and not after",
    () =>
      Effect.gen(function* () {
        const { stack, fiber } = yield* started
        const readiness = yield* Readiness.pipe(Effect.provide(readinessLayer))
        assert.deepStrictEqual(yield* readiness.reasons, [])
        stack.commitFails("KafkaJSProtocolError: The coordinator is not aware of this member")
        const reasons = yield* readiness.reasons
        assert.strictEqual(reasons.length, 1)
        assert.match(
          reasons[0]!,
          /^offsets cannot be committed for 5 s \(the group no longer counts this instance as a member; rejoining\): KafkaJSProtocolError: The coordinator is not aware/,
        )
        stack.commitFails(undefined)
        assert.deepStrictEqual(yield* readiness.reasons, [])
        yield* Fiber.interrupt(fiber)
      }),
  )
  it.effect("a write that never answers makes the batch slow: /readyz says so after the stall timeout", () =>
    Effect.gen(function* () {
      const { stack, fiber } = yield* started
      const stalls = yield* Stalls
      const readiness = yield* Readiness.pipe(Effect.provide(readinessLayer))
      stack.mongoHangs(true)
      yield* stack.append(
        0,
        records.slice(0, 100).map((r) => encode(r)),
      )
      yield* TestClock.adjust("30 seconds")
      // Before PIPELINE__STALL_TIMEOUT_SECONDS (60 s by default): in flight, not yet slow.
      assert.deepStrictEqual(stalls.slowBatches(60_000, yield* Clock.currentTimeMillis), [])
      assert.deepStrictEqual(yield* readiness.reasons, [])
      yield* TestClock.adjust("40 seconds")
      const slow = stalls.slowBatches(60_000, yield* Clock.currentTimeMillis)
      assert.deepStrictEqual(
        slow.map((s) => [s.partition, s.offsets]),
        [[0, "0-99"]],
      )
      const reasons = yield* readiness.reasons
      assert.strictEqual(reasons.length, 1)
      assert.match(reasons[0]!, /^partition 0: the batch at offsets 0-99 has been in flight for 70 s/)
      assert.strictEqual(stack.committed(0), 0)
      yield* Fiber.interrupt(fiber)
    }),
  )
})

describe("runPipeline, reloading", () => {
  it.live(
    "a reload into a branched pipeline applies from the next batch: the sink topic then gets only paid orders, projected",
    () => {
      const file = join(mkdtempSync(join(tmpdir(), "reload-branched-")), "pipeline.yaml")
      writeFileSync(file, readFileSync("config/pipeline.yaml", "utf8"))
      return Effect.gen(function* () {
        const stack = yield* InMemory.MemoryStack
        const applied = Metric.value(Metric.withAttributes(Metrics.reloads, { outcome: "applied" }))
        const before = (yield* applied).count
        const fiber = yield* Effect.forkScoped(runPipeline(yield* loadPipelineFile(file)).pipe(Effect.scoped))
        // No duplicates: the reload empties the duplicate window, so a repeat of a record from
        // before it would pass as new, which is not what this test is about.
        const all = [...generate({ ...defaultRecordOptions, seed: 32, duplicateRatio: 0 }, 0, 400)]
        const first = all.slice(0, 200)
        const second = all.slice(200)
        yield* stack.append(
          0,
          first.map((r) => encode(r)),
        )
        yield* stack.untilCommitted
        const validIn = (batch: ReadonlyArray<GeneratedRecord>, paidOnly: boolean) =>
          batch
            .filter(
              (r) => r.kind === "valid" && (!paidOnly || (r.value as { status?: unknown }).status === "paid"),
            )
            .map((r) => r.key!)
            .sort()
        assert.deepStrictEqual(
          stack
            .sent("orders.clean")
            .map((m) => String(m.key))
            .sort(),
          validIn(first, false),
        )

        writeFileSync(`${file}.tmp`, readFileSync("config/examples/branched.yaml", "utf8"))
        renameSync(`${file}.tmp`, file)
        for (let i = 0; i < 200 && (yield* applied).count === before; i++) yield* Effect.sleep("50 millis")
        assert.strictEqual((yield* applied).count, before + 1, "the reload was applied")

        yield* stack.append(
          0,
          second.map((r) => encode(r)),
        )
        yield* stack.untilCommitted
        const afterReload = stack.sent("orders.clean").slice(validIn(first, false).length)
        assert.deepStrictEqual(afterReload.map((m) => String(m.key)).sort(), validIn(second, true))
        for (const m of afterReload) {
          assert.deepStrictEqual(Object.keys(JSON.parse(String(m.value))).sort(), [
            "amount",
            "created_at",
            "currency",
            "event_id",
            "status",
          ])
        }
        // MongoDB still gets every valid record of both halves.
        assert.strictEqual(stack.documents.size, validIn(all, false).length)
        yield* Fiber.interrupt(fiber)
      }).pipe(Effect.provide(InMemory.layer({ PIPELINE__FILE: file })))
    },
  )
})
