import { assert, describe, it } from "@effect/vitest"
import { Clock, Deferred, Duration, Effect, Exit, Fiber, References } from "effect"
import { TestClock } from "effect/testing"
import * as Dag from "../../src/Dag/Dag.js"
import * as Executor from "../../src/Dag/Executor.js"
import * as Task from "../../src/Dag/Task.js"
import { makeContext, Permanent, Transient, timeline } from "./support.js"

const noJitter = { jitter: false } as const

/** Runs the DAG in a fiber, lets `advance` of virtual time pass, and returns the result. */
const runFor = <O, E extends Task.TaskError, R, P>(
  dag: Dag.Dag<O, E, R, P>,
  payload: P,
  options: Executor.ExecutorOptions,
  advance: Duration.Input,
) =>
  Effect.gen(function* () {
    const context = yield* makeContext(payload)
    const fiber = yield* Effect.forkChild(Executor.run(dag, context, options))
    yield* TestClock.adjust(advance)
    return yield* Fiber.join(fiber)
  })

describe("Executor scheduling", () => {
  it.effect("runs two independent tasks at the same time", () =>
    Effect.gen(function* () {
      const { events, work } = timeline()
      const a = Task.make({ name: "a", run: () => work("a", 1000) })
      const b = Task.make({ name: "b", run: () => work("b", 1000) })
      const result = yield* runFor(yield* Dag.make([a, b]), null, { maxWorkers: 2 }, "5 seconds")
      assert.deepStrictEqual(events, ["0 a start", "0 b start", "1000 a end", "1000 b end"])
      assert.deepStrictEqual(
        result.tasks.map((task) => [task.name, task._tag, task.durationMs]),
        [
          ["a", "Succeeded", 1000],
          ["b", "Succeeded", 1000],
        ],
      )
    }),
  )

  it.effect("starts a dependent only after all of its dependencies succeeded", () =>
    Effect.gen(function* () {
      const { events, work } = timeline()
      const a = Task.make({ name: "a", run: () => work("a", 1000) })
      const b = Task.make({ name: "b", run: () => work("b", 3000) })
      const c = Task.make({ name: "c", dependsOn: [a, b], run: () => work("c", 500) })
      yield* runFor(yield* Dag.make([c, a, b]), null, { maxWorkers: 3 }, "10 seconds")
      assert.deepStrictEqual(events, [
        "0 a start",
        "0 b start",
        "1000 a end",
        "3000 b end",
        "3000 c start",
        "3500 c end",
      ])
    }),
  )

  it.effect("does not let a slow branch hold back an independent one", () =>
    Effect.gen(function* () {
      const { events, work } = timeline()
      const slow = Task.make({ name: "slow", run: () => work("slow", 10_000) })
      const afterSlow = Task.make({
        name: "afterSlow",
        dependsOn: [slow],
        run: () => work("afterSlow", 1000),
      })
      const fast1 = Task.make({ name: "fast1", run: () => work("fast1", 1000) })
      const fast2 = Task.make({ name: "fast2", dependsOn: [fast1], run: () => work("fast2", 1000) })
      const fast3 = Task.make({ name: "fast3", dependsOn: [fast2], run: () => work("fast3", 1000) })
      const dag = yield* Dag.make([slow, afterSlow, fast1, fast2, fast3])
      // Tier by tier, fast2 would wait for slow (both are in tier 1 or below it).
      assert.deepStrictEqual(dag.tiers, [["slow", "fast1"], ["afterSlow", "fast2"], ["fast3"]])
      yield* runFor(dag, null, { maxWorkers: 4 }, "20 seconds")
      assert.includeMembers(events, [
        "1000 fast2 start",
        "2000 fast3 start",
        "3000 fast3 end",
        "10000 afterSlow start",
      ])
    }),
  )

  it.effect("never runs more than maxWorkers tasks at once", () =>
    Effect.gen(function* () {
      let running = 0
      let peak = 0
      const ends: Array<number> = []
      const tasks = Array.from({ length: 10 }, (_, i) =>
        Task.make({
          name: `t${i}`,
          run: () =>
            Effect.sync(() => {
              running++
              peak = Math.max(peak, running)
            }).pipe(
              Effect.andThen(Effect.sleep(1000)),
              Effect.andThen(Clock.currentTimeMillis),
              Effect.flatMap((now) =>
                Effect.sync(() => {
                  running--
                  ends.push(now)
                }),
              ),
            ),
        }),
      )
      const result = yield* runFor(yield* Dag.make(tasks), null, { maxWorkers: 3 }, "1 minute")
      assert.strictEqual(peak, 3)
      assert.deepStrictEqual(ends, [1000, 1000, 1000, 2000, 2000, 2000, 3000, 3000, 3000, 4000])
      assert.isTrue(result.allSucceeded)
      // Time spent waiting for a worker is not the task's duration.
      assert.isTrue(result.tasks.every((task) => task.durationMs === 1000))
    }),
  )

  it.effect("with one worker, runs tasks one after another", () =>
    Effect.gen(function* () {
      const { events, work } = timeline()
      const a = Task.make({ name: "a", run: () => work("a", 1000) })
      const b = Task.make({ name: "b", run: () => work("b", 1000) })
      yield* runFor(yield* Dag.make([a, b]), null, { maxWorkers: 1 }, "5 seconds")
      assert.deepStrictEqual(events, ["0 a start", "1000 a end", "1000 b start", "2000 b end"])
    }),
  )
})

describe("Executor retries and timeouts", () => {
  /** Fails with Transient on the first `failures` attempts, recording the time of each attempt. */
  const flaky = (failures: number) => {
    const attemptsAt: Array<number> = []
    const run = () =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        attemptsAt.push(now)
        return attemptsAt.length <= failures
          ? Effect.fail(new Transient({ attempt: attemptsAt.length }))
          : Effect.succeed(attemptsAt.length)
      })
    return { attemptsAt, run }
  }

  it.effect("retries a retryable error with exact exponential delays", () =>
    Effect.gen(function* () {
      const { attemptsAt, run } = flaky(3)
      const task = Task.make({ name: "flaky", run })
      const retry = { retryCount: 5, baseDelay: "100 millis", maxDelay: "10 seconds", ...noJitter } as const
      const result = yield* runFor(yield* Dag.make([task]), null, { maxWorkers: 1, retry }, "1 minute")
      assert.deepStrictEqual(attemptsAt, [0, 100, 300, 700])
      assert.deepStrictEqual(result.tasks, [
        { _tag: "Succeeded", name: "flaky", output: 4, attempts: 4, durationMs: 700 },
      ])
    }),
  )

  it.effect("caps each delay and gives up after retryCount retries with the last error", () =>
    Effect.gen(function* () {
      const { attemptsAt, run } = flaky(Number.POSITIVE_INFINITY)
      const task = Task.make({ name: "down", run })
      const retry = { retryCount: 4, baseDelay: "1 second", maxDelay: "3 seconds", ...noJitter } as const
      const result = yield* runFor(yield* Dag.make([task]), null, { maxWorkers: 1, retry }, "1 minute")
      // Delays 1 s, 2 s, then 4 s and 8 s capped at 3 s.
      assert.deepStrictEqual(attemptsAt, [0, 1000, 3000, 6000, 9000])
      const [only] = result.tasks
      assert.strictEqual(only?._tag, "Failed")
      if (only?._tag === "Failed") {
        assert.deepStrictEqual(only.error, new Transient({ attempt: 5 }))
        assert.strictEqual(only.attempts, 5)
        assert.strictEqual(only.durationMs, 9000)
      }
    }),
  )

  it.effect("uses a task's own retry settings over the executor's", () =>
    Effect.gen(function* () {
      const own = flaky(2)
      const inherited = flaky(2)
      const overriding = Task.make({
        name: "overriding",
        run: own.run,
        retry: { retryCount: 2, baseDelay: "1 second", maxDelay: "1 minute", ...noJitter },
      })
      const defaulted = Task.make({ name: "defaulted", run: inherited.run })
      const retry = { retryCount: 1, baseDelay: "10 millis", maxDelay: "1 minute", ...noJitter } as const
      const result = yield* runFor(
        yield* Dag.make([overriding, defaulted]),
        null,
        { maxWorkers: 2, retry },
        "1 minute",
      )
      assert.deepStrictEqual(own.attemptsAt, [0, 1000, 3000])
      assert.deepStrictEqual(inherited.attemptsAt, [0, 10])
      assert.deepStrictEqual(
        result.tasks.map((task) => [task.name, task._tag, task.attempts]),
        [
          ["overriding", "Succeeded", 3],
          ["defaulted", "Failed", 2],
        ],
      )
    }),
  )

  it.effect("does not retry a non-retryable error", () =>
    Effect.gen(function* () {
      let attempts = 0
      const task = Task.make({
        name: "bad-data",
        run: () => Effect.suspend(() => Effect.fail(new Permanent({ reason: `attempt ${++attempts}` }))),
      })
      const retry = { retryCount: 5, baseDelay: "1 second", maxDelay: "1 minute", ...noJitter } as const
      const result = yield* runFor(yield* Dag.make([task]), null, { maxWorkers: 1, retry }, "1 minute")
      assert.strictEqual(attempts, 1)
      assert.deepStrictEqual(result.tasks, [
        {
          _tag: "Failed",
          name: "bad-data",
          error: new Permanent({ reason: "attempt 1" }),
          attempts: 1,
          durationMs: 0,
        },
      ])
    }),
  )

  it.effect("fails a task that exceeds its timeout with TaskTimeoutError and runs its finalizers", () =>
    Effect.gen(function* () {
      let finalized = 0
      const hanging = Task.make({
        name: "hanging",
        timeout: "1 second",
        run: () => Effect.never.pipe(Effect.ensuring(Effect.sync(() => finalized++))),
      })
      const result = yield* runFor(yield* Dag.make([hanging]), null, { maxWorkers: 1 }, "1 minute")
      const [only] = result.tasks
      assert.strictEqual(only?._tag, "Failed")
      if (only?._tag === "Failed") {
        assert.instanceOf(only.error, Executor.TaskTimeoutError)
        assert.deepStrictEqual(
          only.error,
          new Executor.TaskTimeoutError({ task: "hanging", timeout: Duration.seconds(1) }),
        )
        assert.strictEqual(only.error.message, 'task "hanging" timed out after 1s')
        assert.strictEqual(only.durationMs, 1000)
      }
      assert.strictEqual(finalized, 1)
    }),
  )

  it.effect("retries a timed-out attempt, timing each attempt on its own", () =>
    Effect.gen(function* () {
      const starts: Array<number> = []
      const hanging = Task.make({
        name: "hanging",
        timeout: "1 second",
        retry: { retryCount: 2, baseDelay: "100 millis", maxDelay: "1 minute", ...noJitter },
        run: () =>
          Effect.flatMap(Clock.currentTimeMillis, (now) => {
            starts.push(now)
            return Effect.never
          }),
      })
      const result = yield* runFor(yield* Dag.make([hanging]), null, { maxWorkers: 1 }, "1 minute")
      assert.deepStrictEqual(starts, [0, 1100, 2300])
      assert.deepStrictEqual(
        result.tasks.map((task) => [task._tag, task.attempts, task.durationMs]),
        [["Failed", 3, 3300]],
      )
    }),
  )
})

describe("Executor failure propagation", () => {
  it.effect("skips the transitive dependents of a failed task and completes the rest", () =>
    Effect.gen(function* () {
      const ran: Array<string> = []
      const ok = <const N extends string>(name: N, dependsOn: ReadonlyArray<string> = []) =>
        Task.make({ name, dependsOn, run: () => Effect.sync(() => void ran.push(name)) })
      const tasks = [
        ok("a"),
        Task.make({
          name: "b",
          dependsOn: ["a"],
          run: () => Effect.fail(new Permanent({ reason: "broken" })),
        }),
        ok("c", ["b"]),
        ok("d", ["c"]),
        ok("e", ["a"]),
        ok("f"),
        ok("g", ["e", "c"]),
      ]
      const result = yield* runFor(yield* Dag.make(tasks), null, { maxWorkers: 4 }, "1 second")
      assert.sameMembers(ran, ["a", "e", "f"])
      assert.isFalse(result.allSucceeded)
      assert.deepStrictEqual(
        result.tasks.map((task) => [
          task.name,
          task._tag,
          task._tag === "Skipped" ? task.failedDependency : task._tag === "Failed" ? task.error._tag : "-",
          task.attempts,
        ]),
        [
          ["a", "Succeeded", "-", 1],
          ["b", "Failed", "Permanent", 1],
          ["c", "Skipped", "b", 0],
          ["d", "Skipped", "b", 0],
          ["e", "Succeeded", "-", 1],
          ["f", "Succeeded", "-", 1],
          ["g", "Skipped", "b", 0],
        ],
      )
    }),
  )

  it.effect("names the first failed dependency in dependsOn order when several failed", () =>
    Effect.gen(function* () {
      const x = Task.make({
        name: "x",
        run: () => Effect.sleep(1000).pipe(Effect.andThen(new Permanent({ reason: "x" }))),
      })
      const y = Task.make({ name: "y", run: () => Effect.fail(new Permanent({ reason: "y" })) })
      const z = Task.make({ name: "z", dependsOn: [x, y], run: () => Effect.void })
      const result = yield* runFor(yield* Dag.make([x, y, z]), null, { maxWorkers: 3 }, "5 seconds")
      const skipped = result.result("z")
      assert.strictEqual(skipped?._tag === "Skipped" ? skipped.failedDependency : undefined, "x")
    }),
  )

  it.effect("turns a defect into a non-retried TaskDefectError for that task alone", () =>
    Effect.gen(function* () {
      let attempts = 0
      const buggy = Task.make({
        name: "buggy",
        run: () =>
          Effect.sync(() => {
            attempts++
            throw new Error("boom")
          }),
      })
      const after = Task.make({ name: "after", dependsOn: [buggy], run: () => Effect.void })
      const other = Task.make({ name: "other", run: () => Effect.succeed("fine") })
      const retry = { retryCount: 3, baseDelay: "1 second", maxDelay: "1 minute", ...noJitter } as const
      const result = yield* runFor(
        yield* Dag.make([buggy, after, other]),
        null,
        { maxWorkers: 2, retry },
        "1 minute",
      )
      assert.strictEqual(attempts, 1)
      const failed = result.result("buggy")
      assert.strictEqual(failed?._tag, "Failed")
      if (failed?._tag === "Failed") {
        assert.instanceOf(failed.error, Executor.TaskDefectError)
        assert.strictEqual(failed.error.message, 'task "buggy" died: boom')
      }
      assert.strictEqual(result.result("after")?._tag, "Skipped")
      assert.strictEqual(result.output("other"), "fine")
    }),
  )

  it.effect("fails a task that interrupts itself instead of waiting for it forever", () =>
    Effect.gen(function* () {
      const quitter = Task.make({ name: "quitter", run: () => Effect.interrupt })
      const after = Task.make({ name: "after", dependsOn: [quitter], run: () => Effect.void })
      const result = yield* runFor(yield* Dag.make([quitter, after]), null, { maxWorkers: 2 }, 0)
      assert.deepStrictEqual(
        result.tasks.map((task) => [task.name, task._tag === "Failed" ? task.error._tag : task._tag]),
        [
          ["quitter", "TaskDefectError"],
          ["after", "Skipped"],
        ],
      )
    }),
  )
})

describe("Executor interruption", () => {
  it.effect("interrupts running tasks, runs their finalizers and starts nothing new", () =>
    Effect.gen(function* () {
      const started: Array<string> = []
      const finalized: Array<string> = []
      const running = yield* Deferred.make<void>()
      let runningCount = 0
      const holding = <const N extends string>(name: N) =>
        Task.make({
          name,
          run: () =>
            Effect.acquireRelease(
              Effect.sync(() => {
                started.push(name)
                if (++runningCount === 2) Deferred.doneUnsafe(running, Exit.void)
              }),
              () => Effect.sync(() => void finalized.push(name)),
            ).pipe(Effect.andThen(Effect.never), Effect.scoped),
        })
      const first = holding("first")
      const second = holding("second")
      const queued = Task.make({ name: "queued", run: () => Effect.sync(() => void started.push("queued")) })
      const dependent = Task.make({
        name: "dependent",
        dependsOn: [first],
        run: () => Effect.sync(() => void started.push("dependent")),
      })
      const dag = yield* Dag.make([first, second, queued, dependent])
      const context = yield* makeContext()
      const fiber = yield* Effect.forkChild(Executor.run(dag, context, { maxWorkers: 2 }))
      yield* Deferred.await(running)
      yield* Fiber.interrupt(fiber)
      const exit = yield* Fiber.await(fiber)
      yield* TestClock.adjust("1 hour")
      assert.isTrue(Exit.hasInterrupts(exit))
      assert.deepStrictEqual(started, ["first", "second"])
      assert.sameMembers(finalized, ["first", "second"])
    }),
  )

  it.effect(
    "lets an uninterruptible task finish after the interruption but starts none of its dependents",
    () =>
      Effect.gen(function* () {
        const events: Array<string> = []
        const started = yield* Deferred.make<void>()
        const sticky = Task.make({
          name: "sticky",
          run: () =>
            Effect.uninterruptible(
              Deferred.succeed(started, undefined).pipe(
                Effect.andThen(Effect.sleep(1000)),
                Effect.andThen(Effect.sync(() => void events.push("sticky done"))),
              ),
            ),
        })
        const next = Task.make({
          name: "next",
          dependsOn: [sticky],
          run: () => Effect.sync(() => void events.push("next started")),
        })
        const context = yield* makeContext()
        const fiber = yield* Effect.forkChild(
          Executor.run(yield* Dag.make([sticky, next]), context, { maxWorkers: 2 }),
        )
        yield* Deferred.await(started)
        const interrupting = yield* Effect.forkChild(Fiber.interrupt(fiber))
        yield* TestClock.adjust("1 hour")
        yield* Fiber.join(interrupting)
        assert.isTrue(Exit.hasInterrupts(yield* Fiber.await(fiber)))
        assert.deepStrictEqual(events, ["sticky done"])
      }),
  )
})

describe("Executor outputs, spans and logs", () => {
  type Records = ReadonlyArray<{ readonly id: number; readonly tags: ReadonlyArray<string> }>
  const batch: Records = [
    { id: 1, tags: [] },
    { id: 2, tags: [] },
  ]
  const tag = (records: Records, name: string): Records =>
    records.map((record) => ({ ...record, tags: [...record.tags, name] }))

  it.effect("passes typed arrays along a pipeline built from task values", () =>
    Effect.gen(function* () {
      const task = Task.builder<Records>()
      const mapping = task({
        name: "mapping",
        run: ({ context }) => Effect.succeed(tag(context.payload, "mapping")),
      })
      const quality = task({
        name: "quality",
        dependsOn: [mapping],
        run: ({ outputs }) => Effect.succeed(tag(outputs.get("mapping"), "quality")),
      })
      const mongo = task({
        name: "mongo",
        dependsOn: [quality],
        run: ({ outputs }) => Effect.succeed(outputs.get("quality").length),
      })
      const kafka = task({
        name: "kafka",
        dependsOn: [quality],
        // @ts-expect-error: only dependencies can be read, and "mapping" is not one
        run: ({ outputs }) => Effect.succeed(outputs.get("mapping").map((record) => `${record.id}`)),
      })
      const result = yield* runFor(
        yield* Dag.make([mapping, quality, mongo, kafka]),
        batch,
        { maxWorkers: 4 },
        0,
      )
      const written: number | undefined = result.output("mongo")
      assert.strictEqual(written, 2)
      assert.deepStrictEqual(result.output("quality"), [
        { id: 1, tags: ["mapping", "quality"] },
        { id: 2, tags: ["mapping", "quality"] },
      ])
      const failed = result.result("kafka")
      assert.strictEqual(failed?._tag === "Failed" ? failed.error._tag : undefined, "TaskDefectError")
    }),
  )

  it.effect("passes arrays along dependencies named by string, as a pipeline declared as data does", () =>
    Effect.gen(function* () {
      const task = Task.builder<Records, Records>()
      const spec = [
        { name: "mapping", dependsOn: [] },
        { name: "conversion", dependsOn: ["mapping"] },
        { name: "quality", dependsOn: ["conversion"] },
        { name: "mongo", dependsOn: ["quality"] },
        { name: "kafka", dependsOn: ["quality"] },
      ]
      const tasks = spec.map(({ name, dependsOn }) =>
        task({
          name,
          dependsOn,
          run: ({ context, outputs }) => {
            const [upstream] = dependsOn
            return Effect.succeed(tag(upstream === undefined ? context.payload : outputs.get(upstream), name))
          },
        }),
      )
      const result = yield* runFor(yield* Dag.make(tasks), batch, { maxWorkers: 10 }, 0)
      assert.deepStrictEqual(result.output("kafka")?.[0]?.tags, ["mapping", "conversion", "quality", "kafka"])
      assert.deepStrictEqual(result.output("mongo")?.[1]?.tags, ["mapping", "conversion", "quality", "mongo"])
    }),
  )

  it.effect("runs each task in a span named after it, with the correlation id in span and logs", () =>
    Effect.gen(function* () {
      const seen: Array<unknown> = []
      const probe = <const N extends string>(name: N) =>
        Task.make({
          name,
          run: () =>
            Effect.gen(function* () {
              const span = yield* Effect.orDie(Effect.currentSpan)
              const annotations = yield* References.CurrentLogAnnotations
              seen.push([span.name, span.attributes.get("pipeline.correlation_id"), annotations])
            }),
        })
      yield* runFor(yield* Dag.make([probe("one"), probe("two")]), null, { maxWorkers: 2 }, 0)
      assert.deepStrictEqual(seen, [
        ["one", "batch-42", { correlation_id: "batch-42", task: "one" }],
        ["two", "batch-42", { correlation_id: "batch-42", task: "two" }],
      ])
    }),
  )
})
