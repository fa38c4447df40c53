import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect } from "effect"
import * as Dag from "../../src/Dag/Dag.js"
import * as Graph from "../../src/Dag/Graph.js"
import * as Task from "../../src/Dag/Task.js"

describe("Dag.make", () => {
  const a = Task.make({ name: "a", run: () => Effect.succeed(1) })
  const b = Task.make({
    name: "b",
    dependsOn: [a],
    run: ({ outputs }) => Effect.succeed(outputs.get("a") + 1),
  })

  it.effect("keeps the tiers and renders the graph", () =>
    Effect.gen(function* () {
      const dag = yield* Dag.make([a, b])
      assert.deepStrictEqual(dag.tiers, [["a"], ["b"]])
      assert.strictEqual(Dag.toMermaid(dag), "graph TD\n  a --> b")
    }),
  )

  it.effect("fails with one DagValidationError naming every problem", () =>
    Effect.gen(function* () {
      const orphan = Task.make({ name: "orphan", dependsOn: ["missing"], run: () => Effect.void })
      const error = yield* Effect.flip(Dag.make([a, b, orphan, a]))
      assert.instanceOf(error, Graph.DagValidationError)
      assert.deepStrictEqual(
        error.problems.map((problem) => problem._tag),
        ["DuplicateName", "UnknownDependency"],
      )
      assert.strictEqual(
        error.message,
        'invalid DAG:\n  - duplicate task name "a"\n  - task "orphan" depends on unknown task "missing"',
      )
    }),
  )
})

describe("Task", () => {
  it("reads retryability from the error value", () => {
    assert.isTrue(Task.isRetryable({ retryable: true }))
    assert.isFalse(Task.isRetryable({ retryable: false }))
    assert.isFalse(Task.isRetryable(new Error("retryable: true")))
    assert.isFalse(Task.isRetryable("retryable"))
  })

  it("keeps dependency names and the timeout", () => {
    const c = Task.make({ name: "c", dependsOn: ["a", "b"], timeout: "2 seconds", run: () => Effect.void })
    assert.deepStrictEqual(c.dependsOn, ["a", "b"])
    assert.strictEqual(c.timeout === undefined ? undefined : Duration.toMillis(c.timeout), 2000)
  })

  it("accepts only errors that say whether they are retryable", () => {
    // @ts-expect-error: a plain Error does not say whether it is retryable
    const untyped = Task.make({ name: "untyped", run: () => Effect.fail(new Error("no")) })
    assert.strictEqual(untyped.name, "untyped")
  })
})
