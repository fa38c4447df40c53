/**
 * The record model shared by the task library, the pipeline runtime and the sinks.
 * A record is a JSON object read from one Kafka message; its outcome says where it ends:
 * valid records go to MongoDB and the sink topic, invalid ones (with their reasons) to the
 * dead-letter topic, duplicates are counted (and dropped when the pipeline says so).
 */

export type Json = null | boolean | number | string | Json[] | JsonObject
export interface JsonObject {
  [key: string]: Json
}

/** Why a record is invalid (or, with severity "warn", what is questionable about it). */
export interface Reason {
  readonly task: string
  readonly field?: string
  readonly rule: string
  readonly message: string
}

export type RecordStatus = "valid" | "invalid" | "duplicate"

export interface PipelineRecord {
  /** Offset of the source message, as kafkajs gives it (a decimal string). */
  readonly offset: string
  /** The record's key, once the key fields are known (set by the duplicate check or the sinks). */
  key?: string
  value: JsonObject
  status: RecordStatus
  /** Reasons for "invalid"; empty otherwise. */
  reasons: Reason[]
  /** Severity-warn findings; the record stays valid. */
  warnings: Reason[]
}

export const makeRecord = (offset: string, value: JsonObject): PipelineRecord => ({
  offset,
  value,
  status: "valid",
  reasons: [],
  warnings: [],
})

export const invalidate = (record: PipelineRecord, reason: Reason): void => {
  record.status = "invalid"
  record.reasons.push(reason)
}

export const isJsonObject = (u: unknown): u is JsonObject =>
  typeof u === "object" && u !== null && !Array.isArray(u)

/** Only valid records are worked on; invalid and duplicate ones pass every later task untouched. */
export const isActive = (record: PipelineRecord): boolean => record.status === "valid"

/**
 * The record's key from its key field values: the text of a single scalar value (what Kafka
 * and MongoDB are given; so 42 and "42" are the same key), a JSON array when there are several
 * fields. Undefined when a key field is missing or null: such a record has no identity to
 * deduplicate or upsert by.
 */
export const keyOf = (values: ReadonlyArray<Json | undefined>): string | undefined => {
  if (values.length === 1) {
    const only = values[0]
    if (only === undefined || only === null) return undefined
    return typeof only === "string" ? only : stringify(only)
  }
  for (const value of values) if (value === undefined || value === null) return undefined
  return stringify(values)
}

// Nesting deep enough to exhaust the stack is not a key anyone means: no key rather than a throw.
const stringify = (value: unknown): string | undefined => {
  try {
    return JSON.stringify(value)
  } catch {
    return undefined
  }
}
