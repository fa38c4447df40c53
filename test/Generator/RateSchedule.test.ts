import { assert, describe, it } from "@effect/vitest"
import { nextStep, type RatePlan } from "../../src/Generator/RateSchedule.js"

const plan = (rate: number, total?: number, maxBatch = 500): RatePlan => ({ rate, total, maxBatch })

/**
 * Drives the schedule with a simulated clock: every send costs `sendMillis`, every wait
 * oversleeps by `lateMillis` (a busy event loop). Returns how many were sent by `untilMillis`.
 */
const simulate = (p: RatePlan, untilMillis: number, sendMillis: number, lateMillis: number) => {
  let now = 0
  let sent = 0
  let steps = 0
  while (now < untilMillis) {
    const step = nextStep(p, 0, sent, now)
    steps++
    if (step._tag === "Done") break
    if (step._tag === "Send") {
      sent += step.count
      now += sendMillis
    } else now += step.millis + lateMillis
  }
  return { sent, now, steps }
}

describe("RateSchedule", () => {
  it("sends the first record at once", () => {
    assert.deepStrictEqual(nextStep(plan(10), 1000, 0, 1000), { _tag: "Send", count: 1 })
  })

  it("waits exactly until the next record is due", () => {
    assert.deepStrictEqual(nextStep(plan(10), 0, 1, 0), { _tag: "Wait", millis: 100 })
    assert.deepStrictEqual(nextStep(plan(10), 0, 1, 40), { _tag: "Wait", millis: 60 })
    assert.deepStrictEqual(nextStep(plan(1000), 0, 5, 4.5), { _tag: "Wait", millis: 1 })
  })

  it("catches up after a stall instead of drifting, a batch at a time", () => {
    assert.deepStrictEqual(nextStep(plan(1000, undefined, 500), 0, 0, 2000), { _tag: "Send", count: 500 })
    assert.deepStrictEqual(nextStep(plan(1000, undefined, 500), 0, 1800, 2000), { _tag: "Send", count: 201 })
  })

  it("stops at the total", () => {
    assert.deepStrictEqual(nextStep(plan(1000, 10), 0, 10, 99_999), { _tag: "Done" })
    assert.deepStrictEqual(nextStep(plan(1000, 10), 0, 8, 99_999), { _tag: "Send", count: 2 })
    assert.deepStrictEqual(nextStep(plan(0, 0), 0, 0, 0), { _tag: "Done" })
  })

  it("rate 0 sends full batches without waiting", () => {
    assert.deepStrictEqual(nextStep(plan(0), 0, 123_456, 0), { _tag: "Send", count: 500 })
    assert.deepStrictEqual(nextStep(plan(0, 1000), 0, 900, 0), { _tag: "Send", count: 100 })
  })

  it("holds 1000/s for 10 s within 2% even with slow sends and late timers", () => {
    for (const [sendMillis, lateMillis] of [
      [0, 0],
      [0.3, 1],
      [2, 4],
      [15, 0],
    ] as const) {
      const { sent } = simulate(plan(1000), 10_000, sendMillis, lateMillis)
      assert.approximately(sent, 10_000, 200, `send ${sendMillis} ms, late ${lateMillis} ms`)
    }
  })

  it("finishes 10,000 records at 1000/s in 10 s, not later", () => {
    const { sent, now } = simulate(plan(1000, 10_000), 60_000, 0.5, 1)
    assert.strictEqual(sent, 10_000)
    assert.approximately(now, 10_000, 200)
  })

  it("sends on time at low rates", () => {
    const { sent, steps } = simulate(plan(10), 60_000, 1, 0)
    assert.approximately(sent, 600, 1)
    assert.isBelow(steps, 1300) // one wait and one send per record, no busy loop
  })
})
