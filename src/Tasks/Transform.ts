/**
 * What every task of the library has in common: a task is built once from its decoded
 * settings (`make(settings, options)`) into a synchronous transform over a batch. The
 * transform never throws and never mutates the records it is given: changed records are
 * returned as new objects, untouched ones as they came. Each call also returns counters for
 * the batch (and a stateful task its levels), which the runtime turns into metrics.
 */
import { type Effect, Schema } from "effect"
import type { PipelineRecord } from "../Domain/Record.js"
import type { KeyWindow } from "./KeyWindow.js"

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

export interface TransformResult<S extends TaskStats = TaskStats> {
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

export type Transform<S extends TaskStats = TaskStats> = ((
  records: ReadonlyArray<PipelineRecord>,
) => TransformResult<S>) & {
  /**
   * A duplicate check's window that the runtime keeps beside the documents and reads back when
   * a partition is assigned (`window.durable`, Pipeline/Windows.ts).
   */
  readonly durableWindow?: KeyWindow
  /** A duplicate check's window, durable or not: the runtime notes the batch's deletes in it. */
  readonly keyWindow?: KeyWindow
}

/** Every field a record may have. */
export const everyField = "*"

/**
 * What a task module is to the task library (Library.ts): a new task type is a module that
 * exports one of these (made with `defineTask`) and one line in the library's list.
 */
export interface TaskDefinition<
  Type extends string,
  FileSettings extends Schema.Top,
  Settings,
  Result extends TransformResult,
  E,
> {
  /** The task's `type` in the pipeline file. */
  readonly type: Type
  /** Its `settings` as the pipeline file writes them. */
  readonly settings: FileSettings
  /** The settings it runs with, from the file's and the pipeline's key; the file's as they are when absent. */
  readonly withPipelineKey?: (settings: FileSettings["Type"], key: ReadonlyArray<string>) => Settings
  /** Builds the transform; a stateful task keeps its state in it: build once, reuse for every batch. */
  readonly make: (
    settings: Settings,
    options: TaskOptions,
  ) => (records: ReadonlyArray<PipelineRecord>) => Result
  /**
   * The fields the transform may change (set, move, remove) in a record's value, as dot paths,
   * or `everyField` when it may change any. Statuses and reasons are not fields: branches merge
   * them by their own rule. Read at load, to refuse parallel branches that write the same field.
   */
  readonly writes: (settings: Settings) => ReadonlyArray<string>
  /** Acts on the result of a batch (the data-quality threshold); nothing when absent. */
  readonly afterBatch?: (result: Result, task: string) => Effect.Effect<void, E>
}

export const defineTask = <
  const Type extends string,
  FileSettings extends Schema.Top,
  Settings = FileSettings["Type"],
  Result extends TransformResult = TransformResult,
  E = never,
>(
  definition: TaskDefinition<Type, FileSettings, Settings, Result, E>,
): TaskDefinition<Type, FileSettings, Settings, Result, E> => definition

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
