/**
 * Standardization: brings equal values to one spelling. Each field gets a list of operations,
 * applied in order:
 * - trim, collapse_whitespace (any run of white space becomes one space),
 *   lower_case, upper_case, title_case ("o'BRIEN-smith" -> "O'Brien-Smith"),
 * - email (trim + lower case), country_code (trim + upper case),
 * - phone_e164 (see Domain/Phone; numbers without "+" are read in the default country),
 * - timestamp_utc (ISO-8601 UTC, same inputs as type conversion), date ("YYYY-MM-DD"),
 * - empty_to_null (a string that is empty after trimming becomes null).
 * Every operation is idempotent, and so is any list of them (a property test checks it): the
 * task's output fed back in comes out unchanged. Missing and null fields are left alone. A value an operation cannot take (a
 * number for title_case, "call me" for phone_e164) is a failure, handled by the field's
 * policy like in type conversion (invalidate by default).
 */
import { Effect, Schema } from "effect"
import { PathString, parsePath } from "../Domain/Path.js"
import { phoneCountries, toE164 } from "../Domain/Phone.js"
import type { Json, PipelineRecord } from "../Domain/Record.js"
import { toIsoDate, toIsoTimestamp } from "../Domain/Timestamp.js"
import { editFields, type FieldEdit, Refusal } from "./FieldEdits.js"
import {
  defineTask,
  OnFailure,
  preview,
  type TaskOptions,
  type TransformResult,
  typeName,
} from "./Transform.js"

export const StandardizationOp = Schema.Literals([
  "trim",
  "collapse_whitespace",
  "lower_case",
  "upper_case",
  "title_case",
  "email",
  "country_code",
  "phone_e164",
  "timestamp_utc",
  "date",
  "empty_to_null",
])
export type StandardizationOp = typeof StandardizationOp.Type

export const PhoneCountry = Schema.String.check(
  Schema.makeFilter((country: string) =>
    phoneCountries.includes(country)
      ? undefined
      : `unknown phone country "${country}" (known: ${phoneCountries.join(", ")})`,
  ),
)

export const StandardizationRule = Schema.Struct({
  field: PathString,
  ops: Schema.Array(StandardizationOp).check(Schema.isMinLength(1)),
  /** For phone_e164; defaults to the task's `defaultCountry`. */
  defaultCountry: Schema.optionalKey(PhoneCountry),
  onFailure: Schema.optionalKey(OnFailure),
})

export const StandardizationSettings = Schema.Struct({
  fields: Schema.Array(StandardizationRule),
  defaultCountry: PhoneCountry.pipe(Schema.withDecodingDefaultKey(Effect.succeed("US"))),
  onFailure: OnFailure.pipe(Schema.withDecodingDefaultKey(Effect.succeed("invalidate" as const))),
})
export type StandardizationSettings = typeof StandardizationSettings.Type

export type StandardizationStats = {
  readonly records: number
  readonly changed: number
  readonly failed: number
  readonly nulled: number
  readonly keptOriginal: number
  readonly invalidated: number
  readonly skipped: number
}

/** A single operation: the new value, or why it could not apply. */
type Operation = (value: Json) => Json | Refusal

const onString =
  (op: StandardizationOp, f: (text: string) => Json): Operation =>
  (value) =>
    typeof value === "string" ? f(value) : new Refusal(op, `expected a string, got ${typeName(value)}`)

const isAsciiSpace = (code: number): boolean => code === 32 || (code >= 9 && code <= 13)

/**
 * Upper-cases the first letter of every word (after white space, "-", "'" or "’"), the rest
 * lower. A letter whose upper case does not lower back to it ("ß" -> "SS") stays as it is,
 * which is what keeps title case idempotent.
 */
export const titleCase = (text: string): string => {
  const lower = text.toLowerCase()
  // ASCII, the common case, without splitting the string into characters.
  let result = ""
  let copiedUpTo = 0
  let atWordStart = true
  for (let i = 0; i < lower.length; i++) {
    const code = lower.charCodeAt(i)
    if (code >= 128) return titleCaseUnicode(lower)
    if (atWordStart && code >= 97 && code <= 122) {
      result += lower.slice(copiedUpTo, i) + String.fromCharCode(code - 32)
      copiedUpTo = i + 1
    }
    atWordStart = isAsciiSpace(code) || code === 45 || code === 39
  }
  return copiedUpTo === 0 ? lower : result + lower.slice(copiedUpTo)
}

const titleCaseUnicode = (lower: string): string => {
  let result = ""
  let atWordStart = true
  for (const ch of lower) {
    if (atWordStart) {
      const upper = ch.toUpperCase()
      result += upper.toLowerCase() === ch ? upper : ch
    } else {
      result += ch
    }
    atWordStart = ch === "-" || ch === "'" || ch === "\u2019" || /\s/.test(ch)
  }
  return result
}

// Replacing is costly even when nothing changes; most values have nothing to collapse.
const collapsible = /\s\s|[^\S ]/
const collapse = (text: string): string => (collapsible.test(text) ? text.replace(/\s+/g, " ") : text)

const phone =
  (country: string): Operation =>
  (value) => {
    const text = typeof value === "number" && Number.isSafeInteger(value) ? String(value) : value
    if (typeof text !== "string")
      return new Refusal("phone_e164", `expected a phone number, got ${typeName(value)}`)
    return (
      toE164(text, country) ??
      new Refusal(
        "phone_e164",
        `cannot read ${preview(value)} as a phone number (default country ${country})`,
      )
    )
  }

const operation = (op: StandardizationOp, country: string): Operation => {
  switch (op) {
    case "trim":
      return onString(op, (text) => text.trim())
    case "collapse_whitespace":
      return onString(op, collapse)
    case "lower_case":
      return onString(op, (text) => text.toLowerCase())
    case "upper_case":
      return onString(op, (text) => text.toUpperCase())
    case "title_case":
      return onString(op, titleCase)
    case "email":
      return onString(op, (text) => text.trim().toLowerCase())
    case "country_code":
      return onString(op, (text) => text.trim().toUpperCase())
    case "phone_e164":
      return phone(country)
    case "timestamp_utc":
      return (value) =>
        toIsoTimestamp(value) ?? new Refusal(op, `cannot read ${preview(value)} as a timestamp`)
    case "date":
      return (value) => toIsoDate(value) ?? new Refusal(op, `cannot read ${preview(value)} as a date`)
    case "empty_to_null":
      return onString(op, (text) => (text.trim().length === 0 ? null : text))
  }
}

/** The field's operations in order; null (from empty_to_null) ends the list. */
const pipeline =
  (ops: ReadonlyArray<Operation>) =>
  (value: Json): Json | Refusal => {
    let current = value
    for (const op of ops) {
      if (current === null) break
      const result = op(current)
      if (result instanceof Refusal) return result
      current = result
    }
    return current
  }

export const make = (settings: StandardizationSettings, options: TaskOptions = {}) => {
  const task = options.name ?? "standardization"
  const edits: ReadonlyArray<FieldEdit> = settings.fields.map((rule) => {
    const country = rule.defaultCountry ?? settings.defaultCountry
    return {
      path: parsePath(rule.field),
      field: rule.field,
      onFailure: rule.onFailure ?? settings.onFailure,
      apply: pipeline(rule.ops.map((op) => operation(op, country))),
    }
  })

  return (records: ReadonlyArray<PipelineRecord>): TransformResult<StandardizationStats> => {
    const { records: out, counts } = editFields(task, edits, records)
    return {
      records: out,
      stats: {
        records: records.length,
        changed: counts.changed,
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
  type: "standardization",
  settings: StandardizationSettings,
  make,
  writes: (settings) => settings.fields.map((f) => f.field),
})
