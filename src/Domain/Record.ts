/**
 * The record model shared by the task library, the pipeline runtime and the sinks.
 * A record is a JSON object read from one Kafka message; its outcome says where it ends:
 * valid records go to MongoDB and the sink topic, invalid ones (with their reasons) to the
 * dead-letter topic, duplicates are counted (and dropped when the pipeline says so), and
 * records a filter stopped are counted as filtered.
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

/** `filtered`: a filter task on the record's branch let it go no further there. */
export type RecordStatus = "valid" | "invalid" | "duplicate" | "filtered"

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
  /** Size of the source message's value in bytes, when known: a bound for the sinks' size checks. */
  readonly sourceBytes?: number
  /** The source message's headers, when it had any: carried on to the sink topic as they came. */
  readonly headers?: SourceHeaders
  /**
   * Where the record was first read, when that is not the batch it came in (a dead letter read
   * back by `replay`); MongoDB's monotonic writes compare this position.
   */
  readonly source?: SourcePosition
}

/** A message's place in Kafka: its topic, partition and offset (a decimal string, as kafkajs gives it). */
export interface SourcePosition {
  readonly topic: string
  readonly partition: number
  readonly offset: string
}

/** A header's value as it came: bytes (or text), several when the name was repeated. */
export type HeaderValue = Buffer | string
export type SourceHeaders = Readonly<Record<string, HeaderValue | ReadonlyArray<HeaderValue> | undefined>>

export const makeRecord = (
  offset: string,
  value: JsonObject,
  sourceBytes?: number,
  headers?: SourceHeaders,
): PipelineRecord => {
  const record: PipelineRecord =
    sourceBytes === undefined
      ? { offset, value, status: "valid", reasons: [], warnings: [] }
      : { offset, value, status: "valid", reasons: [], warnings: [], sourceBytes }
  return headers === undefined ? record : { ...record, headers }
}

export const invalidate = (record: PipelineRecord, reason: Reason): void => {
  record.status = "invalid"
  record.reasons.push(reason)
}

export const isJsonObject = (u: unknown): u is JsonObject =>
  typeof u === "object" && u !== null && !Array.isArray(u)

/** Only valid records are worked on; invalid, duplicate and filtered ones pass every later task untouched. */
export const isActive = (record: PipelineRecord): boolean => record.status === "valid"

/** Why a record has no usable key; `field` is the position of the key field at fault. */
export class KeyProblem {
  constructor(
    readonly field: number,
    readonly problem: string,
  ) {}
}

/** Longest key by default, in UTF-8 bytes (PIPELINE__MAX_KEY_BYTES). */
export const defaultMaxKeyBytes = 1024

const keyPart = (value: Json | undefined, field: number): string | KeyProblem => {
  if (typeof value === "string") return value === "" ? new KeyProblem(field, "is an empty string") : value
  // Numbers reach here exactly as written: integers beyond 2^53 were kept as their text when parsed.
  if (typeof value === "number") return String(value)
  if (value === undefined || value === null) return new KeyProblem(field, "is missing or null")
  return new KeyProblem(
    field,
    `is ${Array.isArray(value) ? "an array" : `a ${typeof value}`}, not a string or a number`,
  )
}

/**
 * The record's key from its key field values: the text of a single value (what Kafka and
 * MongoDB are given; so 42 and "42" are the same key), the JSON array of the values when
 * there are several fields. Each value must be a non-empty string or a number; a record whose key
 * is missing, null, empty, an object, an array or a boolean, or longer than `maxBytes`, has
 * no identity to deduplicate or upsert by: the problem says why.
 */
export const keyOf = (
  values: ReadonlyArray<Json | undefined>,
  maxBytes: number = defaultMaxKeyBytes,
): string | KeyProblem => {
  let key: string
  if (values.length === 1) {
    const part = keyPart(values[0], 0)
    if (typeof part !== "string") return part
    key = part
  } else {
    for (let i = 0; i < values.length; i++) {
      const part = keyPart(values[i], i)
      if (typeof part !== "string") return part
    }
    key = JSON.stringify(values)
  }
  // A UTF-16 unit is at most 3 UTF-8 bytes: count bytes only when the length alone cannot tell.
  if (key.length * 3 > maxBytes && Buffer.byteLength(key, "utf8") > maxBytes) {
    return new KeyProblem(-1, `is longer than ${maxBytes} bytes (PIPELINE__MAX_KEY_BYTES)`)
  }
  return key
}

/** A key problem as a sentence naming the field. */
export const describeKeyProblem = (problem: KeyProblem, fields: ReadonlyArray<string>): string =>
  problem.field < 0
    ? `the record key (${fields.join(", ")}) ${problem.problem}`
    : `key field ${fields[problem.field] ?? "?"} ${problem.problem}`
