import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Layer } from "effect"
import { TestClock } from "effect/testing"
import type { Options } from "../../src/Generator/Options/Options.js"
import { Output, OutputClosed } from "../../src/Generator/Output/Output.js"
import { defaultRecordOptions, type GeneratedRecord } from "../../src/Generator/Records.js"
import { run, type Terminal } from "../../src/Generator/Run.js"
import { emptyStats } from "../../src/Generator/Stats.js"

const options = (overrides: Partial<Options> = {}): Options => ({
  records: { ...defaultRecordOptions, seed: 9 },
  rate: 100,
  total: undefined,
  output: { _tag: "console" },
  batchSize: 500,
  ...overrides,
})

const terminal = (live = false) => {
  const lines: Array<string> = []
  const t: Terminal = { out: (s) => lines.push(s), err: (s) => lines.push(s), live }
  return { t, lines }
}

/** An output that keeps what it is given; `refuse` picks messages it turns down. */
const memory = (refuse: (r: GeneratedRecord) => boolean = () => false) => {
  const written: Array<GeneratedRecord> = []
  const layer = Layer.succeed(Output, {
    write: (records) =>
      Effect.sync(() => {
        written.push(...records)
        return records.filter(refuse)
      }),
  })
  return { written, layer }
}

describe("Run", () => {
  it.effect("holds the rate against the clock: 100/s for 10 s is 1001 records (one at t=0)", () =>
    Effect.gen(function* () {
      const out = memory()
      const stats = emptyStats()
      const fiber = yield* run(options(), stats, terminal().t).pipe(
        Effect.provide(out.layer),
        Effect.forkChild,
      )
      yield* TestClock.adjust("10 seconds")
      assert.strictEqual(stats.sent, 1001)
      yield* TestClock.adjust("5 seconds")
      assert.strictEqual(stats.sent, 1501)
      yield* Fiber.interrupt(fiber)
      assert.strictEqual(out.written.length, 1501)
      assert.deepStrictEqual(
        out.written.map((r) => r.index),
        Array.from({ length: 1501 }, (_, i) => i),
      )
    }),
  )

  it.effect("stops at the total, after total / rate seconds", () =>
    Effect.gen(function* () {
      const out = memory()
      const stats = emptyStats()
      const fiber = yield* run(options({ rate: 1000, total: 10_000 }), stats, terminal().t).pipe(
        Effect.provide(out.layer),
        Effect.forkChild,
      )
      yield* TestClock.adjust("9 seconds")
      assert.strictEqual(stats.sent, 9001)
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(fiber)
      assert.strictEqual(stats.sent, 10_000)
      assert.strictEqual(stats.elapsedMillis, 9999)
      assert.strictEqual(stats.valid + stats.invalid + stats.duplicates, 10_000)
    }),
  )

  it.effect("rate 0 sends everything in batches without waiting for the clock", () =>
    Effect.gen(function* () {
      const out = memory()
      const stats = emptyStats()
      yield* run(options({ rate: 0, total: 2345, batchSize: 100 }), stats, terminal().t).pipe(
        Effect.provide(out.layer),
      )
      assert.strictEqual(stats.sent, 2345)
      assert.strictEqual(out.written.length, 2345)
    }),
  )

  it.effect("Ctrl-C waits for the batch in flight, then stops; it is counted", () =>
    Effect.gen(function* () {
      const entered = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      const stats = emptyStats()
      const slow = Layer.succeed(Output, {
        write: () =>
          Deferred.succeed(entered, undefined).pipe(Effect.andThen(Deferred.await(release)), Effect.as([])),
      })
      const fiber = yield* run(options({ rate: 0, total: 50, batchSize: 50 }), stats, terminal().t).pipe(
        Effect.provide(slow),
        Effect.forkChild,
      )
      yield* Deferred.await(entered)
      const interrupting = yield* Effect.forkChild(Fiber.interrupt(fiber))
      for (let i = 0; i < 10; i++) yield* Effect.yieldNow // the interrupt is pending before the write ends
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(interrupting)
      assert.strictEqual(stats.sent, 50)
    }),
  )

  it.effect("counts messages the output refuses as errors, not as sent", () =>
    Effect.gen(function* () {
      const out = memory((r) => r.kind === "oversized")
      const stats = emptyStats()
      const records = { ...defaultRecordOptions, oversizedRatio: 0.1, oversizedBytes: 2048 }
      yield* run(options({ rate: 0, total: 1000, records }), stats, terminal().t).pipe(
        Effect.provide(out.layer),
      )
      const oversized = out.written.filter((r) => r.kind === "oversized").length
      assert.isAbove(oversized, 50)
      assert.strictEqual(stats.errors, oversized)
      assert.strictEqual(stats.oversized, 0)
      assert.strictEqual(stats.sent, 1000 - oversized)
    }),
  )

  it.effect("a closed output (generate | head) ends the run normally", () =>
    Effect.gen(function* () {
      const stats = emptyStats()
      let writes = 0
      const closing = Layer.succeed(Output, {
        write: () => (++writes > 3 ? Effect.fail(new OutputClosed({ cause: "EPIPE" })) : Effect.succeed([])),
      })
      yield* run(options({ rate: 0, batchSize: 10 }), stats, terminal().t).pipe(Effect.provide(closing))
      assert.strictEqual(stats.sent, 30)
    }),
  )

  it.effect("logs a progress line every 5 s when stderr is not a terminal", () =>
    Effect.gen(function* () {
      const { t, lines } = terminal(false)
      const fiber = yield* run(options({ rate: 10 }), emptyStats(), t).pipe(
        Effect.provide(memory().layer),
        Effect.forkChild,
      )
      yield* TestClock.adjust("4 seconds")
      assert.deepStrictEqual(lines, [])
      yield* TestClock.adjust("11 seconds")
      yield* Fiber.interrupt(fiber)
      assert.strictEqual(lines.length, 3)
      assert.match(lines[0] ?? "", /^generate: \d+ sent, [\d.]+ rec\/s, 0 errors, [\d.]+ s\n$/)
    }),
  )

  it.effect("redraws one live line every second on a terminal and clears it at the end", () =>
    Effect.gen(function* () {
      const { t, lines } = terminal(true)
      const fiber = yield* run(options({ rate: 10 }), emptyStats(), t).pipe(
        Effect.provide(memory().layer),
        Effect.forkChild,
      )
      yield* TestClock.adjust("3 seconds")
      yield* Fiber.interrupt(fiber)
      assert.strictEqual(lines.length, 4)
      for (const line of lines) assert.isTrue(line.startsWith("\r\x1b[2K") && !line.includes("\n"))
      assert.strictEqual(lines.at(-1), "\r\x1b[2K")
    }),
  )
})
