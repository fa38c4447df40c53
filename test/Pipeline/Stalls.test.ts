/**
 * Slow batches: a batch in flight for longer than the stall timeout with no failure noted
 * (a write held open without an answer) is reported and logged once per period it lasts.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { TestClock } from "effect/testing"
import { PartitionStalls, warnSlowBatches } from "../../src/Pipeline/Stalls.js"
import { captureLogs, parseJsonLines } from "../Observability/support.js"

describe("slow batches", () => {
  it("a partition's oldest batch past the timeout is slow, unless the partition is stalled", () => {
    const stalls = new PartitionStalls()
    stalls.batchStarted(0, 1_000, "0-99")
    stalls.batchStarted(0, 2_000, "100-199")
    stalls.batchStarted(1, 50_000, "0-49")
    assert.deepStrictEqual(stalls.slowBatches(60_000, 61_000), [])
    assert.deepStrictEqual(stalls.slowBatches(60_000, 61_001), [
      { partition: 0, offsets: "0-99", since: 1_000 },
    ])
    stalls.batchEnded(0, 1_000, "0-99")
    assert.deepStrictEqual(stalls.slowBatches(60_000, 62_500), [
      { partition: 0, offsets: "100-199", since: 2_000 },
    ])
    // A stalled partition is reported as a stall, with its error, not a second time as slow.
    Effect.runSync(
      stalls.note({
        partition: 0,
        since: 3_000,
        offsets: "100-199",
        what: "the mongodb sink",
        error: "down",
      }),
    )
    assert.deepStrictEqual(stalls.slowBatches(60_000, 200_000), [
      { partition: 1, offsets: "0-49", since: 50_000 },
    ])
  })

  it.effect("logs a WARNING once per timeout period a batch stays in flight", () =>
    Effect.gen(function* () {
      const stalls = new PartitionStalls()
      stalls.batchStarted(2, 0, "500-999")
      const warn = warnSlowBatches(stalls, 60_000)
      const { lines } = yield* captureLogs(
        Effect.gen(function* () {
          for (const at of [30, 61, 62, 90, 121, 122]) {
            yield* TestClock.setTime(at * 1000)
            yield* warn
          }
          stalls.batchEnded(2, 0, "500-999")
          yield* TestClock.setTime(200_000)
          yield* warn
        }),
      )
      const warnings = parseJsonLines(lines).filter((l) => l.level === "WARN")
      assert.deepStrictEqual(
        warnings.map((w) => [
          w.annotations.partition,
          w.annotations.offsets,
          w.annotations.in_flight_seconds,
        ]),
        [
          [2, "500-999", 61],
          [2, "500-999", 121],
        ],
      )
    }),
  )
})
