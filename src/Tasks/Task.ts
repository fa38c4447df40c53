/**
 * What every task of the library has in common: a task is built once from its decoded
 * settings (`make(settings, options)`) into a synchronous transform over a batch. The
 * transform never throws and never mutates the records it is given: changed records are
 * returned as new objects, untouched ones as they came. Each call also returns counters for
 * the batch (and a stateful task its levels), which the runtime turns into metrics.
 */
import { Schema } from "effect"
import type { PipelineRecord } from "../Domain/Record.js"

export interface TaskOptions {
  /** Task name as declared in the pipeline; it is the `task` of every reason the task gives. */
  readonly name?: string
  /** Milliseconds since the epoch; tests pass a controllable clock. */
  readonly now?: () => number
  /** Longest record key in UTF-8 bytes (PIPELINE__MAX_KEY_BYTES); a longer one is no key. */
  readonly maxKeyBytes?: number
}

/** Counters for one batch. Every task reports `records` (in), `invalidated` (by this task) and `skipped` (already invalid or duplicate). */
export type TaskStats = { readonly [counter: string]: number }

export interface TaskResult<S extends TaskStats = TaskStats> {
  readonly records: ReadonlyArray<PipelineRecord>
  readonly stats: S
  /** Levels after the batch, not counts (the duplicate window's size); the runtime shows them as gauges. */
  readonly levels?: { readonly [level: string]: number }
}

/**
 * `each` over the records still valid, in order; the others (invalid, duplicate, filtered) pass
 * on as they are. Returns the records out and how many were passed on.
 */
export const mapValid = (
  records: ReadonlyArray<PipelineRecord>,
  each: (record: PipelineRecord) => PipelineRecord,
): { readonly records: Array<PipelineRecord>; readonly skipped: number } => {
  const out: Array<PipelineRecord> = new Array(records.length)
  let skipped = 0
  for (let r = 0; r < records.length; r++) {
    const record = records[r]!
    if (record.status === "valid") out[r] = each(record)
    else {
      out[r] = record
      skipped++
    }
  }
  return { records: out, skipped }
}

export type Transform<S extends TaskStats = TaskStats> = (
  records: ReadonlyArray<PipelineRecord>,
) => TaskResult<S>

/** What to do with a field whose value cannot be converted or standardized. */
export const OnFailure = Schema.Literals(["invalidate", "set_null", "keep_original"])
export type OnFailure = typeof OnFailure.Type

const previewLength = 60

/** A value as it appears in a reason message: JSON, cut short so a huge value cannot flood the dead-letter topic. */
export const preview = (value: unknown): string => {
  let text: string
  if (typeof value === "string") {
    // Cut before quoting: a 10 MB string is not copied just to be cut afterwards.
    if (value.length > previewLength) return `${JSON.stringify(value.slice(0, previewLength))}…`
    text = JSON.stringify(value)
  } else if (value === undefined) {
    return "nothing"
  } else {
    try {
      text = JSON.stringify(value) ?? String(value)
    } catch {
      text = String(value)
    }
  }
  return text.length > previewLength ? `${text.slice(0, previewLength)}…` : text
}

/** The JSON type name of a value, for messages like "expected a string, got array". */
export const typeName = (value: unknown): string => {
  if (value === null) return "null"
  if (Array.isArray(value)) return "array"
  return typeof value
}
