import { assert, describe, it } from "@effect/vitest"
import { Clock, Duration, Effect, Fiber, Result, Schedule } from "effect"
import { TestClock } from "effect/testing"
import * as Retry from "../../src/Dag/Retry.js"
import { Permanent, Transient } from "./support.js"

/** The delays a schedule produces, in milliseconds, until it stops. */
const delaysOf = (schedule: Schedule.Schedule<Duration.Duration, unknown>) =>
  Effect.gen(function* () {
    const step = yield* Schedule.toStep(schedule)
    const delays: Array<number> = []
    for (let now = 0; delays.length < 100; ) {
      const next = yield* Effect.result(step(now, undefined))
      if (Result.isFailure(next)) break
      const delay = Duration.toMillis(next.success[1])
      delays.push(delay)
      now += delay
    }
    return delays
  })

describe("retryPolicy", () => {
  it.effect("doubles from the base delay, caps each delay and stops after retryCount", () =>
    Effect.gen(function* () {
      const delays = yield* delaysOf(
        Retry.retryPolicy({ retryCount: 6, baseDelay: "100 millis", maxDelay: "1 second", jitter: false }),
      )
      assert.deepStrictEqual(delays, [100, 200, 400, 800, 1000, 1000])
    }),
  )

  it.effect("makes no retries when retryCount is 0", () =>
    Effect.gen(function* () {
      const delays = yield* delaysOf(
        Retry.retryPolicy({ retryCount: 0, baseDelay: "1 second", maxDelay: "1 minute" }),
      )
      assert.deepStrictEqual(delays, [])
    }),
  )

  it.effect("jitters each delay within ±20% and never past the cap", () =>
    Effect.gen(function* () {
      const policy = Retry.retryPolicy({ retryCount: 5, baseDelay: "1 second", maxDelay: "10 seconds" })
      const nominal = [1000, 2000, 4000, 8000, 16000]
      const firstDelays = new Set<number>()
      for (let sample = 0; sample < 200; sample++) {
        const delays = yield* delaysOf(policy)
        assert.strictEqual(delays.length, 5)
        delays.forEach((delay, k) => {
          assert.isAtLeast(delay, Math.min(0.8 * nominal[k]!, 10_000))
          assert.isAtMost(delay, Math.min(1.2 * nominal[k]!, 10_000))
        })
        firstDelays.add(delays[0]!)
      }
      assert.isAbove(firstDelays.size, 1, "the delays are jittered")
    }),
  )
})

describe("withRetry", () => {
  const failing = (errors: ReadonlyArray<Transient | Permanent>) => {
    const attemptsAt: Array<number> = []
    const effect = Effect.flatMap(Clock.currentTimeMillis, (now) => {
      attemptsAt.push(now)
      const error = errors[attemptsAt.length - 1]
      return error === undefined ? Effect.succeed("ok") : Effect.fail(error)
    })
    return { attemptsAt, effect }
  }
  const settings: Retry.RetrySettings = {
    retryCount: 3,
    baseDelay: "1 second",
    maxDelay: "1 minute",
    jitter: false,
  }
  const isRetryable = (error: Transient | Permanent) => error.retryable

  it.effect("retries retryable errors after the policy's delays", () =>
    Effect.gen(function* () {
      const { attemptsAt, effect } = failing([new Transient({ attempt: 1 }), new Transient({ attempt: 2 })])
      const fiber = yield* Effect.forkChild(Retry.withRetry(effect, settings, isRetryable))
      yield* TestClock.adjust("1 minute")
      assert.strictEqual(yield* Fiber.join(fiber), "ok")
      assert.deepStrictEqual(attemptsAt, [0, 1000, 3000])
    }),
  )

  it.effect("stops at the first error the predicate rejects", () =>
    Effect.gen(function* () {
      const { attemptsAt, effect } = failing([new Transient({ attempt: 1 }), new Permanent({ reason: "no" })])
      const fiber = yield* Effect.forkChild(Effect.flip(Retry.withRetry(effect, settings, isRetryable)))
      yield* TestClock.adjust("1 minute")
      assert.deepStrictEqual(yield* Fiber.join(fiber), new Permanent({ reason: "no" }))
      assert.deepStrictEqual(attemptsAt, [0, 1000])
    }),
  )

  it.effect("makes a single attempt when retryCount is 0", () =>
    Effect.gen(function* () {
      const { attemptsAt, effect } = failing([new Transient({ attempt: 1 })])
      const error = yield* Effect.flip(Retry.withRetry(effect, { ...settings, retryCount: 0 }, isRetryable))
      assert.deepStrictEqual(error, new Transient({ attempt: 1 }))
      assert.deepStrictEqual(attemptsAt, [0])
    }),
  )
})
