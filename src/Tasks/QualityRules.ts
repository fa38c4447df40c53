/**
 * The data-quality rules: their settings (a union on `rule`) and each one compiled into a
 * check that returns a message when the value fails, undefined when it passes. Regular
 * expressions are compiled when the settings are decoded, so a bad pattern stops the start
 * instead of failing at the first record.
 *
 * Patterns run on RE2 (re2js, in plain JavaScript), whose time is linear in the value whatever
 * the pattern: JavaScript's own engine backtracks, and `^(\w+\s?)*$` took 211 ms on 24 characters
 * and twice as long with each one more (the event loop held, heartbeats stop, the group
 * rebalances, the next instance blocks on the same record). RE2 has no lookarounds and no backreferences. The values a pattern is
 * tested on are bounded too (`maxLength`), so that one record costs a bounded time.
 */
import { Effect, Schema } from "effect"
import { RE2JS } from "re2js"
import { PathString } from "../Domain/Path.js"
import type { Json } from "../Domain/Record.js"
import { preview, typeName } from "./Transform.js"

const Severity = Schema.Literals(["error", "warn"])

const common = {
  field: PathString,
  severity: Severity.pipe(Schema.withDecodingDefaultKey(Effect.succeed("error" as const))),
}

const NonNegativeInt = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))

/** The longest value a pattern is tested on, in characters, unless the rule sets its own `maxLength`. */
export const defaultPatternMaxLength = 4096

/** JavaScript's flags in RE2's terms; RE2 always reads patterns and values as Unicode (what `u` asks). */
const re2Flags = (flags: string): number =>
  (flags.includes("i") ? RE2JS.CASE_INSENSITIVE : 0) |
  (flags.includes("m") ? RE2JS.MULTILINE : 0) |
  (flags.includes("s") ? RE2JS.DOTALL : 0)

export const compilePattern = (pattern: string, flags = ""): RE2JS => RE2JS.compile(pattern, re2Flags(flags))

const compilesInJavaScript = (pattern: string, flags: string): boolean => {
  try {
    new RegExp(pattern, flags)
    return true
  } catch {
    return false
  }
}

/** Why a pattern does not compile, in the words of the definition's error list. */
export const regexProblem = (pattern: string, flags = ""): string | undefined => {
  try {
    compilePattern(pattern, flags)
    return undefined
  } catch (error) {
    const detail = error instanceof Error ? error.message.replace(/^error parsing regexp: /, "") : undefined
    const why = compilesInJavaScript(pattern, flags)
      ? "; patterns run on RE2, in time linear in the value: no lookarounds, no backreferences, \\x{...} for \\u..."
      : ""
    return `invalid regular expression ${JSON.stringify(pattern)}${detail === undefined ? "" : ` (${detail})`}${why}`
  }
}

const NotNull = Schema.Struct({ rule: Schema.Literal("NotNull"), ...common })
const NotEmpty = Schema.Struct({ rule: Schema.Literal("NotEmpty"), ...common })

const Range = Schema.Struct({
  rule: Schema.Literal("Range"),
  ...common,
  min: Schema.optionalKey(Schema.Finite),
  max: Schema.optionalKey(Schema.Finite),
}).check(
  Schema.makeFilter((range) => {
    if (range.min === undefined && range.max === undefined)
      return { path: ["min"], issue: "Range needs min, max or both" }
    if (range.min !== undefined && range.max !== undefined && range.min > range.max)
      return { path: ["max"], issue: `max ${range.max} is below min ${range.min}` }
    return undefined
  }),
)

const Pattern = Schema.Struct({
  rule: Schema.Literal("Pattern"),
  ...common,
  pattern: Schema.String,
  /** Longer values fail the rule without being tested. */
  maxLength: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 1_048_576 }))),
  // "g" and "y" would make a match depend on the records before it.
  flags: Schema.optionalKey(
    Schema.String.check(
      Schema.makeFilter((flags: string) =>
        /^[imsu]*$/.test(flags) ? undefined : `flags may only be i, m, s and u; got ${JSON.stringify(flags)}`,
      ),
    ),
  ),
}).check(
  Schema.makeFilter((rule) => {
    const problem = regexProblem(rule.pattern, rule.flags)
    return problem === undefined ? undefined : { path: ["pattern"], issue: problem }
  }),
)

const JsonType = Schema.Literals(["string", "number", "integer", "boolean", "array", "object"])

const Type = Schema.Struct({ rule: Schema.Literal("Type"), ...common, type: JsonType })

const Scalar = Schema.Union([Schema.String, Schema.Finite, Schema.Boolean, Schema.Null])

const OneOf = Schema.Struct({
  rule: Schema.Literal("OneOf"),
  ...common,
  values: Schema.Array(Scalar).check(Schema.isMinLength(1)),
  ignoreCase: Schema.Boolean.pipe(Schema.withDecodingDefaultKey(Effect.succeed(false))),
})

const Length = Schema.Struct({
  rule: Schema.Literal("Length"),
  ...common,
  min: Schema.optionalKey(NonNegativeInt),
  max: Schema.optionalKey(NonNegativeInt),
  exact: Schema.optionalKey(NonNegativeInt),
}).check(
  Schema.makeFilter((length) => {
    if (length.min === undefined && length.max === undefined && length.exact === undefined)
      return { path: ["exact"], issue: "Length needs exact, min, max or both" }
    if (length.exact !== undefined && (length.min !== undefined || length.max !== undefined))
      return { path: ["exact"], issue: "exact cannot be combined with min or max" }
    if (length.min !== undefined && length.max !== undefined && length.min > length.max)
      return { path: ["max"], issue: `max ${length.max} is below min ${length.min}` }
    return undefined
  }),
)

export const QualityRule = Schema.Union([NotNull, NotEmpty, Range, Pattern, Type, OneOf, Length])
export type QualityRule = typeof QualityRule.Type

export const ruleNames: ReadonlyArray<QualityRule["rule"]> = [
  "NotNull",
  "NotEmpty",
  "Range",
  "Pattern",
  "Type",
  "OneOf",
  "Length",
]

type Check = (value: Json | undefined) => string | undefined

const isMissing = (value: Json | undefined): value is null | undefined =>
  value === undefined || value === null

/** Characters as people count them: code points, not UTF-16 units. */
const lengthOf = (text: string): number => {
  let surrogatePairs = 0
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    if (code >= 0xd800 && code <= 0xdbff) surrogatePairs++
  }
  return text.length - surrogatePairs
}

const matchesType = (value: Json, type: typeof JsonType.Type): boolean => {
  switch (type) {
    case "integer":
      return Number.isInteger(value)
    case "array":
      return Array.isArray(value)
    case "object":
      return typeof value === "object" && value !== null && !Array.isArray(value)
    default:
      return typeof value === type
  }
}

export const compileRule = (rule: QualityRule): Check => {
  const field = rule.field
  switch (rule.rule) {
    case "NotNull":
      return (value) =>
        value === undefined ? `${field} is missing` : value === null ? `${field} is null` : undefined
    case "NotEmpty":
      return (value) => {
        if (isMissing(value)) return `${field} is ${value === null ? "null" : "missing"}`
        const empty =
          typeof value === "string"
            ? value.trim().length === 0
            : Array.isArray(value)
              ? value.length === 0
              : typeof value === "object" && Object.keys(value).length === 0
        return empty ? `${field} is empty` : undefined
      }
    case "Range": {
      const { min, max } = rule
      return (value) => {
        if (isMissing(value)) return undefined
        if (typeof value !== "number") return `${field} should be a number, got ${typeName(value)}`
        if (min !== undefined && value < min) return `${field} ${value} is below the minimum ${min}`
        if (max !== undefined && value > max) return `${field} ${value} is above the maximum ${max}`
        return undefined
      }
    }
    case "Pattern": {
      const regex = compilePattern(rule.pattern, rule.flags)
      const maxLength = rule.maxLength ?? defaultPatternMaxLength
      return (value) => {
        if (isMissing(value)) return undefined
        if (typeof value !== "string") return `${field} should be a string, got ${typeName(value)}`
        const length = value.length > maxLength ? lengthOf(value) : value.length
        if (length > maxLength)
          return `${field} is ${length} characters long, longer than the ${maxLength} a pattern is tested on (maxLength)`
        return regex.test(value) ? undefined : `${field} ${preview(value)} does not match ${rule.pattern}`
      }
    }
    case "Type":
      return (value) =>
        isMissing(value) || matchesType(value, rule.type)
          ? undefined
          : `${field} should be ${rule.type}, got ${typeName(value)}`
    case "OneOf": {
      const fold = (v: Json): Json => (rule.ignoreCase && typeof v === "string" ? v.toLowerCase() : v)
      const allowed = new Set<Json>(rule.values.map(fold))
      const listed = rule.values.map((v) => (typeof v === "string" ? v : JSON.stringify(v))).join(", ")
      return (value) =>
        isMissing(value) || allowed.has(fold(value))
          ? undefined
          : `${field} ${preview(value)} is not one of ${listed}`
    }
    case "Length": {
      const { min, max, exact } = rule
      return (value) => {
        if (isMissing(value)) return undefined
        const length =
          typeof value === "string" ? lengthOf(value) : Array.isArray(value) ? value.length : undefined
        if (length === undefined) return `${field} should be a string or an array, got ${typeName(value)}`
        if (exact !== undefined && length !== exact) return `${field} has length ${length}, expected ${exact}`
        if (min !== undefined && length < min)
          return `${field} has length ${length}, below the minimum ${min}`
        if (max !== undefined && length > max)
          return `${field} has length ${length}, above the maximum ${max}`
        return undefined
      }
    }
  }
}
