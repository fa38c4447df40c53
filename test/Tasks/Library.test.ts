import { assert, describe, it } from "@effect/vitest"
import { Effect, Result } from "effect"
import { validatePipelineSpec } from "../../src/Config/PipelineSpec.js"
import { isSinkTask } from "../../src/Config/SinkKinds.js"
import type { PipelineRecord } from "../../src/Domain/Record.js"
import { makeTransform, runTask, type TransformTask } from "../../src/Tasks/Library.js"
import { batch } from "./support.js"

const transformsOf = (tasks: ReadonlyArray<unknown>): Array<TransformTask> => {
  const sinks = [
    { name: "mongodb", type: "mongodb_sink", dependsOn: ["last"] },
    { name: "kafka", type: "kafka_sink", dependsOn: ["last"] },
  ]
  const spec = Result.getOrThrow(validatePipelineSpec({ key: "id", tasks: [...tasks, ...sinks] }))
  return spec.tasks.flatMap((task) => (isSinkTask(task) ? [] : [task]))
}

describe("Library", () => {
  it("builds every task type from a decoded definition, naming reasons after the task", () => {
    const tasks = transformsOf([
      { name: "map", type: "field_mapping", settings: { mappings: [{ from: "a", to: "b" }] } },
      {
        name: "conv",
        type: "type_conversion",
        dependsOn: ["map"],
        settings: { fields: [{ field: "b", to: "integer" }] },
      },
      {
        name: "std",
        type: "standardization",
        dependsOn: ["conv"],
        settings: { fields: [{ field: "s", ops: ["trim"] }] },
      },
      { name: "dedupe", type: "duplicate_check", dependsOn: ["std"], settings: {} },
      {
        name: "last",
        type: "data_quality",
        dependsOn: ["dedupe"],
        settings: { rules: [{ rule: "Range", field: "b", max: 10 }] },
      },
    ])
    const transforms = tasks.map((task) => makeTransform(task))
    const output = transforms.reduce<ReadonlyArray<PipelineRecord>>(
      (records, transform) => transform(records).records,
      batch({ id: 1, a: "5", s: " x " }, { id: 1, a: "6" }, { id: 2, a: "50" }, { id: 3, a: "x" }),
    )
    assert.deepStrictEqual(
      output.map((record) => [
        record.status,
        record.reasons.map((reason) => `${reason.task}:${reason.rule}`),
      ]),
      [
        ["valid", []],
        ["duplicate", []],
        ["invalid", ["last:Range"]],
        ["invalid", ["conv:integer"]],
      ],
    )
    assert.deepStrictEqual(output[0]!.value, { id: 1, b: 5, s: "x" })
  })

  it.effect("runs a task as an Effect; a data-quality task acts on its threshold", () =>
    Effect.gen(function* () {
      const [quality] = transformsOf([
        {
          name: "last",
          type: "data_quality",
          settings: {
            rules: [{ rule: "NotNull", field: "v" }],
            threshold: { maxInvalidRatio: 0.5, action: "fail", minRecords: 1 },
          },
        },
      ])
      const run = runTask(quality!)
      const fine = yield* run(batch({ v: 1 }, { v: 2 }, {}))
      assert.strictEqual(fine.stats.invalidated, 1)
      const error = yield* Effect.flip(run(batch({ v: 1 }, {}, {})))
      assert.strictEqual(error._tag, "QualityThresholdExceeded")
      assert.strictEqual(error.task, "last")
    }),
  )
})
