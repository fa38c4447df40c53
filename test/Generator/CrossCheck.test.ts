/**
 * The generator against the default pipeline (config/pipeline.yaml), in-process: generated
 * records go through the pipeline's transforms in batches, and every valid record must come
 * out valid, every duplicate as a duplicate, and every invalid record invalid for exactly the
 * reason it is tagged with. If the contract drifts on either side, this is where it shows.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { loadPipelineFile } from "../../src/Config/PipelineFile.js"
import type { TaskSpec } from "../../src/Config/PipelineSpec.js"
import { makeRecord, type PipelineRecord, type Reason } from "../../src/Domain/Record.js"
import type { RecordDefect } from "../../src/Generator/Defects.js"
import {
  defaultRecordOptions,
  type GeneratedRecord,
  generate,
  type RecordOptions,
} from "../../src/Generator/Records.js"
import { makeTransform, type TransformTask, transformTaskTypes } from "../../src/Tasks/Library.js"
import type { Transform } from "../../src/Tasks/Transform.js"

const BATCH = 100
const NOW = Date.UTC(2026, 10, 27)

type TransformSpec = Extract<TaskSpec, { readonly type: TransformTask["type"] }>

const isTransform = (task: TaskSpec): task is TransformSpec =>
  (transformTaskTypes as ReadonlyArray<string>).includes(task.type)

/** The pipeline's transforms in dependency order, built once so the duplicate check remembers across batches. */
const loadTransforms = Effect.gen(function* () {
  const spec = yield* loadPipelineFile("config/pipeline.yaml")
  const done = new Set<string>()
  const transforms: Array<Transform> = []
  for (const task of spec.tasks.filter(isTransform)) {
    const spec_ = spec.tasks.find((t) => t.name === task.name)
    for (const dependency of spec_?.dependsOn ?? [])
      assert.isTrue(done.has(dependency), `${task.name} runs after ${dependency}`)
    transforms.push(makeTransform(task, { now: () => NOW }))
    done.add(task.name)
  }
  return transforms
})

/** The pipeline's field name for a generated record's dotted path (the mapping flattens customer.* and order.*). */
const mappedField = (path: string | undefined): string => path?.split(".").at(-1) ?? ""

/** Which reason each defect must produce: the task that catches it and its rule. */
const expectedReason: { readonly [D in RecordDefect]: (reason: Reason) => boolean } = {
  missing_required_field: (r) => r.task === "quality" && r.rule === "NotNull",
  wrong_type: (r) => r.task === "conversion" && ["float", "integer"].includes(r.rule),
  out_of_range: (r) => r.task === "quality" && r.rule === "Range",
  bad_pattern: (r) => r.task === "quality" && r.rule === "Pattern",
  bad_date: (r) => r.task === "conversion" && r.rule === "timestamp",
  bad_enum: (r) => r.task === "quality" && r.rule === "OneOf",
}

const throughPipeline = (transforms: ReadonlyArray<Transform>, records: ReadonlyArray<GeneratedRecord>) => {
  const out: Array<readonly [GeneratedRecord, PipelineRecord]> = []
  for (let start = 0; start < records.length; start += BATCH) {
    const batch = records.slice(start, start + BATCH)
    let current: ReadonlyArray<PipelineRecord> = batch.map((r) => {
      if (r.value instanceof Uint8Array) throw new Error(`record ${r.index} is not a record`)
      return makeRecord(String(r.index), r.value)
    })
    for (const transform of transforms) current = transform(current).records
    current.forEach((p, i) => {
      out.push([batch[i] as GeneratedRecord, p])
    })
  }
  return out
}

const check = (options: RecordOptions, count: number) =>
  Effect.gen(function* () {
    const transforms = yield* loadTransforms
    const records = [...generate(options, 0, count)]
    const results = throughPipeline(transforms, records)
    assert.strictEqual(results.length, count)
    for (const [g, p] of results) {
      const where = `record ${g.index} (${g.kind} ${g.defect ?? ""} ${g.field ?? ""}): ${JSON.stringify(g.value)} -> ${JSON.stringify(p.reasons)}`
      switch (g.kind) {
        case "valid":
          assert.strictEqual(p.status, "valid", where)
          assert.deepStrictEqual(p.reasons, [], where)
          break
        case "duplicate":
          assert.strictEqual(p.status, "duplicate", where)
          break
        case "invalid": {
          assert.strictEqual(p.status, "invalid", where)
          assert.strictEqual(p.reasons.length, 1, where)
          const reason = p.reasons[0] as Reason
          assert.isTrue(g.defect !== undefined && expectedReason[g.defect as RecordDefect](reason), where)
          assert.strictEqual(reason.field, mappedField(g.field), where)
          break
        }
        default:
          assert.fail(`unexpected ${g.kind}`)
      }
    }
    return results
  })

describe("generated records through the default pipeline", () => {
  it.effect(
    "10,000 mixed records: valid pass, duplicates are removed, invalid fail for their tagged reason",
    () =>
      Effect.gen(function* () {
        const results = yield* check({ ...defaultRecordOptions, seed: 42 }, 10_000)
        const kinds = new Set(results.map(([g]) => `${g.kind} ${g.defect ?? ""}`))
        assert.strictEqual(kinds.size, 2 + 6, [...kinds].join(", "))
      }),
  )

  it.effect("3,000 invalid records of another seed, every defect and every variant", () =>
    Effect.gen(function* () {
      const results = yield* check({ ...defaultRecordOptions, seed: 7, pattern: "invalid" }, 3_000)
      const variants = new Set(results.map(([g]) => `${g.defect} ${g.field}`))
      assert.strictEqual(variants.size, 12, [...variants].sort().join(", "))
    }),
  )
})
