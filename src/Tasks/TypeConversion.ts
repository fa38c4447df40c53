/**
 * TypeConversion: gives fields the type the rest of the pipeline expects.
 *
 * Rules (numeric strings are trimmed and must be plain decimal notation, optionally with an
 * exponent: "42", " 42 ", "-1.5", "1e3"; hex, "Infinity", "" and "abc" are failures, never NaN):
 * - integer: an integral number or numeric string within ±2^53 ("1e3" -> 1000; "4.5" fails).
 * - float:   a finite number or numeric string ("1e400" overflows a double: a failure, never Infinity).
 * - boolean: true/false; "true"/"false", "yes"/"no", "1"/"0" (trimmed, any case); 1/0.
 * - string:  strings as they are; numbers and booleans as their text; objects and arrays fail, and
 *   so does a number a double cannot hold (1e400 in JSON text is Infinity once parsed: its text is lost).
 * - date:    "YYYY-MM-DD"; a timestamp (below) gives its UTC date.
 * - timestamp: ISO-8601 with or without zone (no zone = UTC), "YYYY-MM-DD HH:MM:SS", or epoch
 *   milliseconds; stored as an ISO-8601 UTC string ("2026-11-27T08:00:00.000Z"). Impossible
 *   dates (2026-02-30, 25:00) fail.
 * A missing or null field is left as it is: whether it may be absent is a data-quality rule.
 * On failure, per field: `invalidate` the record (default), `set_null`, or `keep_original`;
 * the last two leave a warning on the record.
 */
import { Effect, Schema } from "effect"
import { PathString, parsePath } from "../Domain/Path.js"
import type { Json, PipelineRecord } from "../Domain/Record.js"
import { toIsoDate, toIsoTimestamp } from "../Domain/Timestamp.js"
import { editFields, type FieldEdit, Refusal } from "./FieldEdits.js"
import { defineTask, OnFailure, preview, type TaskOptions, type TransformResult } from "./Transform.js"

export const TargetType = Schema.Literals(["string", "integer", "float", "boolean", "date", "timestamp"])
export type TargetType = typeof TargetType.Type

export const ConversionRule = Schema.Struct({
  field: PathString,
  to: TargetType,
  onFailure: Schema.optionalKey(OnFailure),
})

export const TypeConversionSettings = Schema.Struct({
  fields: Schema.Array(ConversionRule),
  /** Policy for fields that do not set their own. */
  onFailure: OnFailure.pipe(Schema.withDecodingDefaultKey(Effect.succeed("invalidate" as const))),
})
export type TypeConversionSettings = typeof TypeConversionSettings.Type

export type TypeConversionStats = {
  readonly records: number
  readonly converted: number
  readonly failed: number
  readonly nulled: number
  readonly keptOriginal: number
  readonly invalidated: number
  readonly skipped: number
}

// A distinct value for "cannot convert": null and undefined are meaningful results.
const failed: unique symbol = Symbol("conversion failed")
type Converted = Json | typeof failed

const numericPattern = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?$/i
// No numeral needs this many characters; longer strings are refused without scanning them.
const maxNumericLength = 400

const toNumber = (value: Json): number | typeof failed => {
  if (typeof value === "number") return value
  if (typeof value !== "string" || value.length > maxNumericLength) return failed
  const text = value.trim()
  return numericPattern.test(text) ? Number(text) : failed
}

export const converters: Readonly<Record<TargetType, (value: Json) => Converted>> = {
  integer: (value) => {
    const n = toNumber(value)
    if (n === failed || !Number.isSafeInteger(n)) return failed
    return n === 0 ? 0 : n // -0 is not JSON
  },
  float: (value) => {
    const n = toNumber(value)
    if (n === failed || !Number.isFinite(n)) return failed
    return n === 0 ? 0 : n
  },
  boolean: (value) => {
    if (typeof value === "boolean") return value
    if (value === 1 || value === 0) return value === 1
    if (typeof value !== "string" || value.length > 20) return failed
    switch (value.trim().toLowerCase()) {
      case "true":
      case "yes":
      case "1":
        return true
      case "false":
      case "no":
      case "0":
        return false
      default:
        return failed
    }
  },
  string: (value) => {
    if (typeof value === "string") return value
    if (typeof value === "number") return Number.isFinite(value) ? String(value) : failed
    if (typeof value === "boolean") return String(value)
    return failed
  },
  date: (value) => toIsoDate(value) ?? failed,
  timestamp: (value) => toIsoTimestamp(value) ?? failed,
}

/**
 * Why a value cannot be converted. A number beyond a double's range says so: as JSON it would
 * read `null`, and "cannot convert null" would hide what the record holds.
 */
const failure = (value: Json, to: TargetType): string => {
  if (typeof value === "number" && !Number.isFinite(value))
    return `cannot convert ${value} to ${to}: the number cannot be stored as a double (${
      Number.isNaN(value) ? "it is NaN" : `it overflows to ${value}`
    })`
  const n = typeof value === "string" ? toNumber(value) : failed
  if (n !== failed && !Number.isFinite(n))
    return `cannot convert ${preview(value)} to ${to}: the number overflows a double (${n})`
  return `cannot convert ${preview(value)} to ${to}`
}

export const make = (settings: TypeConversionSettings, options: TaskOptions = {}) => {
  const task = options.name ?? "type_conversion"
  const edits: ReadonlyArray<FieldEdit> = settings.fields.map((rule) => {
    const convert = converters[rule.to]
    return {
      path: parsePath(rule.field),
      field: rule.field,
      onFailure: rule.onFailure ?? settings.onFailure,
      apply: (value: Json) => {
        const result = convert(value)
        return result === failed ? new Refusal(rule.to, failure(value, rule.to)) : result
      },
    }
  })

  return (records: ReadonlyArray<PipelineRecord>): TransformResult<TypeConversionStats> => {
    const { records: out, counts } = editFields(task, edits, records)
    return {
      records: out,
      stats: {
        records: records.length,
        converted: counts.succeeded,
        failed: counts.failed,
        nulled: counts.nulled,
        keptOriginal: counts.keptOriginal,
        invalidated: counts.invalidated,
        skipped: counts.skipped,
      },
    }
  }
}

export const definition = defineTask({
  type: "type_conversion",
  settings: TypeConversionSettings,
  make,
  writes: (settings) => settings.fields.map((f) => f.field),
})
