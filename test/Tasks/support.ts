import { readFileSync } from "node:fs"
import { Result, Schema } from "effect"
import { parsePipelineText } from "../../src/Config/PipelineFile.js"
import { validatePipelineSpec } from "../../src/Config/PipelineSpec.js"
import { isSinkTask } from "../../src/Config/SinkKinds.js"
import { type JsonObject, makeRecord, type PipelineRecord } from "../../src/Domain/Record.js"
import { makeTransform } from "../../src/Tasks/Library.js"
import type { Transform } from "../../src/Tasks/Transform.js"

/** Settings as a pipeline file would give them, decoded the same way. */
export const settingsOf =
  <S extends Schema.Top & { readonly DecodingServices: never }>(schema: S) =>
  (input: unknown): S["Type"] =>
    Schema.decodeUnknownSync(schema)(input, { onExcessProperty: "error" })

/** A batch of fresh valid records, offsets "0", "1", ... */
export const batch = (...values: ReadonlyArray<JsonObject>): Array<PipelineRecord> =>
  values.map((value, index) => makeRecord(String(index), value))

export const invalidRecord = (offset: string, value: JsonObject): PipelineRecord => ({
  ...makeRecord(offset, value),
  status: "invalid",
  reasons: [{ task: "earlier", field: "x", rule: "Earlier", message: "invalid before" }],
})

/** A deep copy, to check later that a transform did not touch its input. */
export const snapshot = <A>(value: A): A => structuredClone(value)

export const longString = (length: number): string => "x".repeat(length)

/** The shipped pipeline's transforms, fresh (with an empty duplicate window) on every call. */
export const defaultTransforms = (now?: () => number): ReadonlyArray<Transform> => {
  const text = readFileSync(new URL("../../config/pipeline.yaml", import.meta.url), "utf8")
  const parsed = Result.getOrThrow(parsePipelineText(text, "yaml"))
  const spec = Result.getOrThrow(validatePipelineSpec(parsed, "config/pipeline.yaml"))
  return spec.tasks.flatMap((task) =>
    isSinkTask(task) ? [] : [makeTransform(task, now === undefined ? {} : { now })],
  )
}

export const runChain = (
  transforms: ReadonlyArray<Transform>,
  records: ReadonlyArray<PipelineRecord>,
): ReadonlyArray<PipelineRecord> =>
  transforms.reduce((current, transform) => transform(current).records, records)
