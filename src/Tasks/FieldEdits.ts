/**
 * The loop type conversion and standardization share: for every valid record, rewrite some
 * fields, each with its own policy for a value that cannot be rewritten (invalidate the
 * record, set the field to null, or keep the original; the last two leave a warning). Missing
 * and null fields are left alone. Records are copied on the first change, never mutated.
 */
import { getPath, type Path, setPath } from "../Domain/Path.js"
import type { Json, JsonObject, PipelineRecord, Reason } from "../Domain/Record.js"
import type { OnFailure } from "./Transform.js"

/** Why a value could not be rewritten: the rule that refused it and a message for people. */
export class Refusal {
  constructor(
    readonly rule: string,
    readonly message: string,
  ) {}
}

export interface FieldEdit {
  readonly path: Path
  readonly field: string
  readonly onFailure: OnFailure
  readonly apply: (value: Json) => Json | Refusal
}

export interface EditCounts {
  /** Fields rewritten without a refusal, changed or not. */
  succeeded: number
  /** Fields whose value actually changed. */
  changed: number
  failed: number
  nulled: number
  keptOriginal: number
  invalidated: number
  skipped: number
}

export const editFields = (
  task: string,
  edits: ReadonlyArray<FieldEdit>,
  records: ReadonlyArray<PipelineRecord>,
): { readonly records: Array<PipelineRecord>; readonly counts: EditCounts } => {
  const out: Array<PipelineRecord> = new Array(records.length)
  const counts: EditCounts = {
    succeeded: 0,
    changed: 0,
    failed: 0,
    nulled: 0,
    keptOriginal: 0,
    invalidated: 0,
    skipped: 0,
  }

  for (let r = 0; r < records.length; r++) {
    const record = records[r]!
    if (record.status !== "valid") {
      out[r] = record
      counts.skipped++
      continue
    }
    let value: JsonObject | undefined
    let reasons: Array<Reason> | undefined
    let warnings: Array<Reason> | undefined
    for (const edit of edits) {
      const current = getPath(value ?? record.value, edit.path)
      if (current === undefined || current === null) continue
      const result = edit.apply(current)
      if (!(result instanceof Refusal)) {
        counts.succeeded++
        if (result !== current) {
          value ??= { ...record.value }
          setPath(value, edit.path, result)
          counts.changed++
        }
        continue
      }
      counts.failed++
      const reason: Reason = { task, field: edit.field, rule: result.rule, message: result.message }
      if (edit.onFailure === "invalidate") {
        reasons ??= []
        reasons.push(reason)
      } else if (edit.onFailure === "set_null") {
        value ??= { ...record.value }
        setPath(value, edit.path, null)
        counts.nulled++
        warnings ??= []
        warnings.push({ ...reason, message: `${reason.message}; set to null` })
      } else {
        counts.keptOriginal++
        warnings ??= []
        warnings.push({ ...reason, message: `${reason.message}; original value kept` })
      }
    }
    if (value === undefined && reasons === undefined && warnings === undefined) {
      out[r] = record
      continue
    }
    const next: PipelineRecord = { ...record, value: value ?? record.value }
    if (warnings !== undefined) next.warnings = [...record.warnings, ...warnings]
    if (reasons !== undefined) {
      counts.invalidated++
      next.status = "invalid"
      next.reasons = [...record.reasons, ...reasons]
    }
    out[r] = next
  }
  return { records: out, counts }
}
