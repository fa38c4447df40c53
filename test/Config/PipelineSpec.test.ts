import { assert, describe, it } from "@effect/vitest"
import { Effect, Result } from "effect"
import {
  decodePipelineSpec,
  type PipelineSpec,
  PipelineSpecError,
  validatePipelineSpec,
} from "../../src/Config/PipelineSpec.js"
import { describePlan } from "../../src/Config/PlanText.js"

const sinks = [
  { name: "mongodb", type: "mongodb_sink", dependsOn: ["quality"] },
  { name: "kafka", type: "kafka_sink", dependsOn: ["quality"] },
]
const quality = { name: "quality", type: "data_quality", settings: { rules: [] } }
const pipeline = (tasks: ReadonlyArray<unknown>, key: unknown = "id") => ({
  key,
  tasks: [...tasks, ...sinks],
})

const problems = (input: unknown): Array<string> => {
  const result = validatePipelineSpec(input)
  if (Result.isSuccess(result)) return assert.fail("expected the definition to be rejected")
  assert.instanceOf(result.failure, PipelineSpecError)
  return result.failure.problems.map((problem) =>
    problem.path === "" ? problem.message : `${problem.path}: ${problem.message}`,
  )
}

const decoded = (input: unknown): PipelineSpec => {
  const result = validatePipelineSpec(input)
  if (Result.isFailure(result)) return assert.fail(result.failure.message)
  return result.success
}

describe("PipelineSpec", () => {
  it("fills defaults: key list, dependsOn, sink settings, the duplicate check's key", () => {
    const spec = decoded(
      pipeline(
        [
          { name: "dedupe", type: "duplicate_check", settings: {} },
          { ...quality, dependsOn: ["dedupe"] },
        ],
        "event_id",
      ),
    )
    assert.deepStrictEqual(spec.key, ["event_id"])
    const [dedupe, , mongodb, kafka] = spec.tasks
    assert.deepStrictEqual(dedupe, {
      name: "dedupe",
      type: "duplicate_check",
      dependsOn: [],
      settings: {
        key: ["event_id"],
        action: "remove",
        markField: "_duplicate",
        window: { maxKeys: 100_000, ttlSeconds: 3_600, durable: true },
      },
    })
    assert.deepStrictEqual(mongodb?.settings, { writeConcern: "majority", journal: true, ordered: false })
    // No codec of its own: the sink sends with KAFKA__COMPRESSION.
    assert.deepStrictEqual(kafka?.settings, {})
  })

  it("refuses ordered MongoDB writes, which the sink does not do", () => {
    const ordered = {
      key: "id",
      tasks: [
        quality,
        { name: "mongodb", type: "mongodb_sink", dependsOn: ["quality"], settings: { ordered: true } },
        { name: "kafka", type: "kafka_sink", dependsOn: ["quality"] },
      ],
    }
    assert.deepStrictEqual(problems(ordered), [
      "tasks[1].settings.ordered: the MongoDB sink always writes unordered (each document on its own); remove the key or set false",
    ])
  })

  it("keeps a duplicate check's own key", () => {
    const spec = decoded(
      pipeline([
        { name: "dedupe", type: "duplicate_check", settings: { key: ["a", "b.c"] } },
        { ...quality, dependsOn: ["dedupe"] },
      ]),
    )
    const dedupe = spec.tasks[0]!
    assert.isTrue(dedupe.type === "duplicate_check" && dedupe.settings.key.join() === "a,b.c")
  })

  it("names an unknown task type, and still checks the rest of that task", () => {
    assert.deepStrictEqual(
      problems(pipeline([{ name: "bad name", type: "fieldmap", retry: { count: -1 } }, quality])),
      [
        'tasks[0].name: task names are letters, digits, "_" and "-", starting with a letter; got "bad name"',
        "tasks[0].retry.count: expected a value greater than or equal to 0, got -1",
        "tasks[0].retry.delaySeconds: required",
        'tasks[0].type: unknown task type "fieldmap" (known: field_mapping, type_conversion, standardization, duplicate_check, data_quality, filter, project, mongodb_sink, kafka_sink)',
      ],
    )
    assert.deepStrictEqual(problems(pipeline([{ name: "x" }, quality])), ["tasks[0].type: required"])
    assert.deepStrictEqual(problems(pipeline(["x", quality])), ["tasks[0]: expected an object, got string"])
  })

  it("names a bad regular expression with its path and the engine's reason", () => {
    const found = problems(
      pipeline([{ ...quality, settings: { rules: [{ rule: "Pattern", field: "a", pattern: "([a-z" }] } }]),
    )
    assert.strictEqual(found.length, 1)
    // The reason in brackets is the JavaScript engine's own text, whatever its wording.
    assert.match(
      found[0]!,
      /^tasks\[0\]\.settings\.rules\[0\]\.pattern: invalid regular expression "\(\[a-z" \([^)]+\)$/,
    )
  })

  it("names unknown dependencies, duplicates and cycles", () => {
    assert.deepStrictEqual(
      problems(
        pipeline([
          { name: "a", type: "type_conversion", dependsOn: ["b"], settings: { fields: [] } },
          { name: "b", type: "type_conversion", dependsOn: ["a", "zz"], settings: { fields: [] } },
          { ...quality, dependsOn: ["b"] },
          { ...quality, dependsOn: ["b"] },
        ]),
      ),
      [
        'tasks[0].dependsOn: cycle: "a" -> "b" -> "a" (each depends on the next)',
        'tasks[1].dependsOn: unknown task "zz"',
        'tasks[3].name: duplicate task name "quality"',
      ],
    )
  })

  it("asks for one sink of each kind, and nothing after a sink", () => {
    assert.deepStrictEqual(
      problems({
        key: "id",
        tasks: [
          quality,
          { name: "mongodb", type: "mongodb_sink" },
          { name: "mongodb2", type: "mongodb_sink", dependsOn: ["quality"] },
          { name: "after", type: "field_mapping", dependsOn: ["mongodb2"], settings: { mappings: [] } },
        ],
      }),
      [
        "tasks: no kafka_sink task; the pipeline needs exactly one",
        "tasks[2].type: a second mongodb_sink task; the pipeline needs exactly one",
        'tasks[3].dependsOn: "mongodb2" is a sink; no task can run after a sink',
      ],
    )
  })

  describe("branches, merges and routing", () => {
    const mapping = (
      name: string,
      dependsOn: ReadonlyArray<string>,
      mappings: ReadonlyArray<object> = [],
    ) => ({
      name,
      type: "field_mapping",
      dependsOn,
      settings: { mappings },
    })
    const conversion = (name: string, dependsOn: ReadonlyArray<string>, fields: ReadonlyArray<string>) => ({
      name,
      type: "type_conversion",
      dependsOn,
      settings: { fields: fields.map((field) => ({ field, to: "float" })) },
    })
    const route = (name: string, dependsOn: ReadonlyArray<string>) => ({
      name,
      type: "filter",
      dependsOn,
      settings: { where: { field: "status", equals: "paid" } },
    })
    const sinksReading = (mongo: ReadonlyArray<string>, kafka: ReadonlyArray<string>) => [
      { name: "mongodb", type: "mongodb_sink", dependsOn: mongo },
      { name: "kafka", type: "kafka_sink", dependsOn: kafka },
    ]
    const definition = (tasks: ReadonlyArray<unknown>) => ({ key: "id", tasks })

    const rejected: ReadonlyArray<readonly [string, ReadonlyArray<unknown>, ReadonlyArray<string>]> = [
      [
        "parallel branches that merge and write the same field",
        [
          mapping("split", []),
          conversion("left", ["split"], ["amount", "tax"]),
          conversion("right", ["split"], ["amount.net"]),
          mapping("joined", ["left", "right"]),
          ...sinksReading(["joined"], ["joined"]),
        ],
        [
          'tasks[2]: tasks "left" and "right" run in parallel and both write "amount"; their records merge at "joined"',
        ],
      ],
      [
        "a branch that rewrites every field beside one that writes a field, merging",
        [
          { name: "slim", type: "project", settings: { fields: ["id"] } },
          conversion("money", [], ["amount"]),
          mapping("joined", ["slim", "money"]),
          ...sinksReading(["joined"], ["joined"]),
        ],
        [
          'tasks[1]: tasks "slim" and "money" run in parallel and both write "amount"; their records merge at "joined"',
        ],
      ],
      [
        "a task that reads another twice, directly and through a task it also reads",
        [mapping("a", []), mapping("b", ["a"]), mapping("c", ["a", "b"]), ...sinksReading(["c"], ["c"])],
        ['tasks[2].dependsOn: task "c" reads "a" twice: directly and through "b"; depend on "b" alone'],
      ],
      [
        "a task that lists an upstream twice",
        [mapping("a", []), mapping("b", ["a", "a"]), ...sinksReading(["b"], ["b"])],
        ['tasks[1].dependsOn: "a" is listed twice'],
      ],
      [
        "a sink that reads two tasks",
        [mapping("a", []), route("paid", ["a"]), ...sinksReading(["a", "paid"], ["paid"])],
        ['tasks[2].dependsOn: sink "mongodb" reads the records of one task; it depends on "a", "paid"'],
      ],
      [
        "a cycle through a merge",
        [mapping("a", ["c"]), mapping("b", ["a"]), mapping("c", ["a", "b"]), ...sinksReading(["c"], ["c"])],
        ['tasks[0].dependsOn: cycle: "a" -> "c" -> "a" (each depends on the next)'],
      ],
      [
        "a filter whose condition has no operator, or two",
        [
          { ...route("paid", []), settings: { where: { field: "status" } } },
          { ...route("big", ["paid"]), settings: { where: { and: [{ field: "amount", gt: 1, lt: 9 }] } } },
          ...sinksReading(["big"], ["big"]),
        ],
        [
          "tasks[0].settings.where: a comparison has exactly one of equals, in, exists, gt, gte, lt, lte; got none",
          "tasks[1].settings.where.and[0]: a comparison has exactly one of equals, in, exists, gt, gte, lt, lte; got gt, lt",
        ],
      ],
    ]
    for (const [what, tasks, expected] of rejected) {
      it(`refuses ${what}`, () => assert.deepStrictEqual(problems(definition(tasks)), [...expected]))
    }

    const accepted: ReadonlyArray<readonly [string, ReadonlyArray<unknown>]> = [
      [
        "parallel branches that write different fields and merge",
        [
          mapping("split", []),
          conversion("left", ["split"], ["amount"]),
          conversion("right", ["split"], ["tax"]),
          mapping("joined", ["left", "right"]),
          ...sinksReading(["joined"], ["joined"]),
        ],
      ],
      [
        "branches that write the same field and never merge (one per sink)",
        [
          mapping("base", []),
          conversion("forMongo", ["base"], ["amount"]),
          { name: "forTopic", type: "project", dependsOn: ["base"], settings: { fields: ["id", "amount"] } },
          ...sinksReading(["forMongo"], ["forTopic"]),
        ],
      ],
      [
        "a sink on a filtered branch and the other on the whole stream",
        [mapping("base", []), route("paid", ["base"]), ...sinksReading(["base"], ["paid"])],
      ],
      ["a sink that reads the batch as parsed", [mapping("base", []), ...sinksReading([], ["base"])]],
    ]
    for (const [what, tasks] of accepted) {
      it(`accepts ${what}`, () => {
        decoded(definition(tasks))
      })
    }
  })

  it("asks for a key", () => {
    assert.deepStrictEqual(problems({ tasks: [quality, ...sinks] }), ["key: required"])
    assert.deepStrictEqual(problems(pipeline([quality], [])), [
      "key: expected a value with a length of at least 1, got []",
    ])
    assert.deepStrictEqual(problems(pipeline([quality], "a..b")), ['key: empty segment in path "a..b"'])
  })

  it("rejects unknown fields, wrong types and empty or non-object definitions", () => {
    assert.deepStrictEqual(problems({ ...pipeline([quality]), extra: true }), ["extra: unknown field"])
    assert.deepStrictEqual(problems({ key: "id", tasks: [] }), [
      "tasks: the pipeline has no tasks",
      "tasks: no mongodb_sink task; the pipeline needs exactly one",
      "tasks: no kafka_sink task; the pipeline needs exactly one",
    ])
    assert.deepStrictEqual(problems(null), ["expected object, got null"])
    assert.deepStrictEqual(problems({ key: "id", tasks: "all" }), ['tasks: expected array, got "all"'])
  })

  it.effect("decodes as an Effect, failing with PipelineSpecError", () =>
    Effect.gen(function* () {
      const spec = yield* decodePipelineSpec(pipeline([quality]))
      assert.strictEqual(spec.tasks.length, 3)
      const error = yield* Effect.flip(decodePipelineSpec({}, "inline.yaml"))
      assert.strictEqual(error._tag, "PipelineSpecError")
      assert.isTrue(
        error.message.startsWith("invalid pipeline definition inline.yaml (2 problems):\n  - key: required"),
      )
    }),
  )
})

describe("describePlan", () => {
  it("prints the tiers and a Mermaid graph", () => {
    const spec = decoded({
      name: "demo",
      key: ["id"],
      tasks: [
        { name: "mapping", type: "field_mapping", settings: { mappings: [] } },
        { ...quality, dependsOn: ["mapping"] },
        ...sinks,
      ],
    })
    assert.strictEqual(
      describePlan(spec),
      [
        'Pipeline "demo": 4 tasks, key id',
        "",
        "Tiers (the tasks of a tier may run in parallel; the sinks run after every transform):",
        "  1. mapping (field_mapping)",
        "  2. quality (data_quality)",
        "  3. mongodb (mongodb_sink), kafka (kafka_sink)",
        "",
        "Sinks (each writes the records as they stand at the task it reads):",
        '  mongodb (mongodb_sink) reads "quality"',
        '  kafka (kafka_sink) reads "quality"',
        "",
        "```mermaid",
        "graph TD",
        "  mapping --> quality",
        "  quality --> mongodb",
        "  quality --> kafka",
        "```",
      ].join("\n"),
    )
  })

  it("draws branches, merges and routes", () => {
    const spec = decoded({
      key: ["id"],
      tasks: [
        { name: "split", type: "field_mapping", settings: { mappings: [] } },
        {
          name: "left",
          type: "type_conversion",
          dependsOn: ["split"],
          settings: { fields: [{ field: "a", to: "float" }] },
        },
        {
          name: "right",
          type: "standardization",
          dependsOn: ["split"],
          settings: { fields: [{ field: "b", ops: ["trim"] }] },
        },
        { name: "joined", type: "data_quality", dependsOn: ["left", "right"], settings: { rules: [] } },
        {
          name: "paid",
          type: "filter",
          dependsOn: ["joined"],
          settings: { where: { field: "s", equals: "paid" } },
        },
        { name: "mongodb", type: "mongodb_sink", dependsOn: ["joined"] },
        { name: "kafka", type: "kafka_sink", dependsOn: ["paid"] },
      ],
    })
    assert.strictEqual(
      describePlan(spec),
      [
        "Pipeline: 7 tasks, key id",
        "",
        "Tiers (the tasks of a tier may run in parallel; the sinks run after every transform):",
        "  1. split (field_mapping)",
        "  2. left (type_conversion), right (standardization)",
        "  3. joined (data_quality)",
        "  4. paid (filter)",
        "  5. mongodb (mongodb_sink), kafka (kafka_sink)",
        "",
        "Merges (a record takes the fields each branch wrote, and the worst status of its branches):",
        '  joined reads "left", "right": left as it stands; right brings b',
        "",
        "Sinks (each writes the records as they stand at the task it reads):",
        '  mongodb (mongodb_sink) reads "joined"',
        '  kafka (kafka_sink) reads "paid", filtered by "paid"',
        "",
        "```mermaid",
        "graph TD",
        '  joined(("joined"))',
        '  paid{{"paid"}}',
        "  split --> left",
        "  split --> right",
        "  left --> joined",
        "  right --> joined",
        "  joined --> paid",
        "  joined --> mongodb",
        "  paid --> kafka",
        "```",
      ].join("\n"),
    )
  })
})
