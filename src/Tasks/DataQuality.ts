/**
 * DataQuality: checks every valid record against a list of rules. A failed rule with severity
 * `error` makes the record invalid; with `warn` it leaves a warning and the record stays valid.
 *
 * Rules: NotNull (present and not null), NotEmpty (also not "", blank, [] or {}), Range
 * (a number within min/max), Pattern (a string matching a regular expression), Type (string,
 * number, integer, boolean, array, object), OneOf (one of the listed values), Length (of a
 * string in characters, or of an array). Only NotNull and NotEmpty look at missing or null
 * fields; the others pass them, so an absent field is reported once, by the rule meant for it.
 *
 * The batch threshold compares the share of invalid records in the batch (invalid for any
 * reason, from any task; duplicates and filtered records not counted) with `maxInvalidRatio`. Crossing it is
 * reported in the result; `enforceThreshold` logs it or fails the batch, as configured.
 * Batches of fewer than `minRecords` counted records are not judged: one bad record in a
 * batch of two says nothing about the stream (a slow topic delivers such batches all day).
 */
import { Data, Effect, Schema } from "effect"
import { getPath, type Path, parsePath } from "../Domain/Path.js"
import type { Json, PipelineRecord, Reason } from "../Domain/Record.js"
import { compileRule, QualityRule } from "./QualityRules.js"
import { defineTask, type TaskOptions, type TransformResult } from "./Transform.js"

export { QualityRule } from "./QualityRules.js"

export const QualityThreshold = Schema.Struct({
  maxInvalidRatio: Schema.Finite.check(Schema.isBetween({ minimum: 0, maximum: 1 })),
  action: Schema.Literals(["log", "fail"]).pipe(
    Schema.withDecodingDefaultKey(Effect.succeed("log" as const)),
  ),
  minRecords: Schema.Int.check(Schema.isGreaterThanOrEqualTo(1)).pipe(
    Schema.withDecodingDefaultKey(Effect.succeed(20)),
  ),
})
export type QualityThreshold = typeof QualityThreshold.Type

export const DataQualitySettings = Schema.Struct({
  rules: Schema.Array(QualityRule),
  threshold: Schema.optionalKey(QualityThreshold),
})
export type DataQualitySettings = typeof DataQualitySettings.Type

export type DataQualityStats = {
  readonly records: number
  readonly checked: number
  readonly invalidated: number
  readonly warnings: number
  /** Invalid records in the output, whichever task invalidated them. */
  readonly invalid: number
  readonly thresholdExceeded: number
  readonly skipped: number
}

export interface ThresholdOutcome {
  readonly invalidRatio: number
  readonly maxInvalidRatio: number
  readonly exceeded: boolean
  readonly action: "log" | "fail"
}

export interface DataQualityResult extends TransformResult<DataQualityStats> {
  /** Undefined when no threshold is configured. */
  readonly threshold: ThresholdOutcome | undefined
}

export class QualityThresholdExceeded extends Data.TaggedError("QualityThresholdExceeded")<{
  readonly task: string
  readonly invalid: number
  readonly records: number
  readonly invalidRatio: number
  readonly maxInvalidRatio: number
}> {
  /** Retrying would judge the same records the same way. */
  readonly retryable = false
  override get message(): string {
    return `${this.task}: ${this.invalid} of ${this.records} records invalid (ratio ${this.invalidRatio.toFixed(3)}), above the threshold ${this.maxInvalidRatio}`
  }
}

interface CompiledCheck {
  readonly path: Path
  readonly field: string
  readonly rule: string
  readonly severity: "error" | "warn"
  readonly check: (value: Json | undefined) => string | undefined
}

export const make = (settings: DataQualitySettings, options: TaskOptions = {}) => {
  const task = options.name ?? "data_quality"
  const checks: ReadonlyArray<CompiledCheck> = settings.rules.map((rule) => ({
    path: parsePath(rule.field),
    field: rule.field,
    rule: rule.rule,
    severity: rule.severity,
    check: compileRule(rule),
  }))
  const threshold = settings.threshold

  return (records: ReadonlyArray<PipelineRecord>): DataQualityResult => {
    const out: Array<PipelineRecord> = new Array(records.length)
    let checked = 0
    let invalidated = 0
    let warningCount = 0
    let invalid = 0
    // Duplicates and records a filter stopped: they count in no ratio.
    let notJudged = 0
    let skipped = 0

    for (let r = 0; r < records.length; r++) {
      const record = records[r]!
      if (record.status !== "valid") {
        out[r] = record
        skipped++
        if (record.status === "invalid") invalid++
        else notJudged++
        continue
      }
      checked++
      let reasons: Array<Reason> | undefined
      let warnings: Array<Reason> | undefined
      for (const check of checks) {
        const message = check.check(getPath(record.value, check.path))
        if (message === undefined) continue
        const reason: Reason = { task, field: check.field, rule: check.rule, message }
        if (check.severity === "error") {
          reasons ??= []
          reasons.push(reason)
        } else {
          warnings ??= []
          warnings.push(reason)
        }
      }
      if (reasons === undefined && warnings === undefined) {
        out[r] = record
        continue
      }
      const next: PipelineRecord = { ...record }
      if (warnings !== undefined) {
        warningCount += warnings.length
        next.warnings = [...record.warnings, ...warnings]
      }
      if (reasons !== undefined) {
        invalidated++
        invalid++
        next.status = "invalid"
        next.reasons = [...record.reasons, ...reasons]
      }
      out[r] = next
    }

    const counted = records.length - notJudged
    const invalidRatio = counted === 0 ? 0 : invalid / counted
    const outcome: ThresholdOutcome | undefined =
      threshold === undefined
        ? undefined
        : {
            invalidRatio,
            maxInvalidRatio: threshold.maxInvalidRatio,
            exceeded: counted >= threshold.minRecords && invalidRatio > threshold.maxInvalidRatio,
            action: threshold.action,
          }
    return {
      records: out,
      stats: {
        records: records.length,
        checked,
        invalidated,
        warnings: warningCount,
        invalid,
        thresholdExceeded: outcome?.exceeded === true ? 1 : 0,
        skipped,
      },
      threshold: outcome,
    }
  }
}

/**
 * Acts on a crossed threshold: `log` logs a warning (the result's `thresholdExceeded` counter
 * counts it, as `pipeline_task_records_total{counter="thresholdExceeded"}`), `fail` fails with
 * QualityThresholdExceeded so the runtime fails the batch.
 */
export const enforceThreshold = (
  result: DataQualityResult,
  task = "data_quality",
): Effect.Effect<void, QualityThresholdExceeded> => {
  const threshold = result.threshold
  if (threshold === undefined || !threshold.exceeded) return Effect.void
  const error = new QualityThresholdExceeded({
    task,
    invalid: result.stats.invalid,
    records: result.stats.records,
    invalidRatio: threshold.invalidRatio,
    maxInvalidRatio: threshold.maxInvalidRatio,
  })
  if (threshold.action === "fail") return Effect.fail(error)
  return Effect.logWarning(error.message).pipe(
    Effect.annotateLogs({
      task,
      invalidRatio: threshold.invalidRatio,
      maxInvalidRatio: threshold.maxInvalidRatio,
    }),
  )
}

export const definition = defineTask({
  type: "data_quality",
  settings: DataQualitySettings,
  make,
  writes: () => [],
  afterBatch: enforceThreshold,
})
