/**
 * Filter: routing by a condition. A valid record that does not match is marked `filtered`: the
 * tasks after the filter pass it untouched and the sinks fed from that branch do not get it.
 * A record no sink's path carries is counted as filtered, never lost.
 *
 * The condition language is data, checked when the pipeline file is decoded; nothing is
 * evaluated as code:
 *   { field: status, equals: paid }            a JSON value, compared exactly
 *   { field: status, in: [paid, shipped] }     one of the values
 *   { field: discount, exists: true }          present and not null (false: missing or null)
 *   { field: amount, gt: 100 }                 also gte, lt, lte: numbers with numbers,
 *                                              strings with strings (ISO timestamps order as text);
 *                                              a value of another type does not match
 *   { and: [ ... ] }, { or: [ ... ] }, { not: { ... } }
 */
import { Schema } from "effect"
import { getPath, type Path, PathString, parsePath } from "../Domain/Path.js"
import type { Json, PipelineRecord } from "../Domain/Record.js"
import { defineTask, mapValid, type TaskOptions, type TransformResult } from "./Transform.js"

const Bound = Schema.Union([Schema.Finite, Schema.String])

const operatorNames = ["equals", "in", "exists", "gt", "gte", "lt", "lte"] as const
const combinatorNames = ["and", "or", "not"] as const

/** A comparison of one field with exactly one operator, or one of and / or / not. */
export interface Condition {
  readonly field?: string
  readonly equals?: Json
  readonly in?: ReadonlyArray<Json>
  readonly exists?: boolean
  readonly gt?: number | string
  readonly gte?: number | string
  readonly lt?: number | string
  readonly lte?: number | string
  readonly and?: ReadonlyArray<Condition>
  readonly or?: ReadonlyArray<Condition>
  readonly not?: Condition
}

/** What is wrong with the shape of one condition (its parts are checked on their own). */
const conditionProblem = (c: Condition): string | undefined => {
  const combinators = combinatorNames.filter((name) => c[name] !== undefined)
  const operators = operatorNames.filter((name) => c[name] !== undefined)
  if (combinators.length > 0) {
    return combinators.length === 1 && operators.length === 0 && c.field === undefined
      ? undefined
      : `a condition is one comparison or one of and, or, not; got ${[...(c.field === undefined ? [] : ["field"]), ...operators, ...combinators].join(", ")}`
  }
  if (c.field === undefined) return "a comparison names its field"
  return operators.length === 1
    ? undefined
    : `a comparison has exactly one of ${operatorNames.join(", ")}; got ${operators.length === 0 ? "none" : operators.join(", ")}`
}

export const Condition: Schema.Codec<Condition> = Schema.Struct({
  field: Schema.optionalKey(PathString),
  equals: Schema.optionalKey(Schema.MutableJson),
  in: Schema.optionalKey(Schema.Array(Schema.MutableJson)),
  exists: Schema.optionalKey(Schema.Boolean),
  gt: Schema.optionalKey(Bound),
  gte: Schema.optionalKey(Bound),
  lt: Schema.optionalKey(Bound),
  lte: Schema.optionalKey(Bound),
  and: Schema.optionalKey(Schema.Array(Schema.suspend(() => Condition)).check(Schema.isMinLength(1))),
  or: Schema.optionalKey(Schema.Array(Schema.suspend(() => Condition)).check(Schema.isMinLength(1))),
  not: Schema.optionalKey(Schema.suspend(() => Condition)),
}).check(Schema.makeFilter(conditionProblem))

export const FilterSettings = Schema.Struct({
  /** Records that match go on; the others are filtered out of this branch. */
  where: Condition,
})
export type FilterSettings = typeof FilterSettings.Type

export type FilterStats = {
  readonly records: number
  readonly passed: number
  readonly filtered: number
  readonly invalidated: number
  readonly skipped: number
}

type Test = (value: Record<string, Json>) => boolean

const equalJson = (a: Json | undefined, b: Json): boolean => {
  if (a === b) return true
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false
  if (Array.isArray(a) !== Array.isArray(b)) return false
  if (Array.isArray(a) && Array.isArray(b))
    return a.length === b.length && a.every((x, i) => equalJson(x, b[i]!))
  const ak = Object.keys(a)
  const bo = b as Record<string, Json>
  return (
    ak.length === Object.keys(bo).length && ak.every((k) => equalJson((a as Record<string, Json>)[k], bo[k]!))
  )
}

const ordered = (
  value: Json | undefined,
  bound: number | string,
  accept: (order: number) => boolean,
): boolean => {
  if (typeof bound === "number") return typeof value === "number" && accept(value - bound)
  return typeof value === "string" && accept(value < bound ? -1 : value > bound ? 1 : 0)
}

const compileComparison = (c: Condition): Test => {
  const path: Path = parsePath(c.field!)
  const at = (value: Record<string, Json>) => getPath(value, path)
  if (c.equals !== undefined) {
    const expected = c.equals
    return (v) => equalJson(at(v), expected)
  }
  if (c.in !== undefined) {
    const values = c.in
    return (v) => {
      const found = at(v)
      return values.some((x) => equalJson(found, x))
    }
  }
  if (c.exists !== undefined) {
    const wanted = c.exists
    return (v) => {
      const found = at(v)
      return (found !== undefined && found !== null) === wanted
    }
  }
  if (c.gt !== undefined) {
    const b = c.gt
    return (v) => ordered(at(v), b, (o) => o > 0)
  }
  if (c.gte !== undefined) {
    const b = c.gte
    return (v) => ordered(at(v), b, (o) => o >= 0)
  }
  if (c.lt !== undefined) {
    const b = c.lt
    return (v) => ordered(at(v), b, (o) => o < 0)
  }
  const b = c.lte!
  return (v) => ordered(at(v), b, (o) => o <= 0)
}

/** The condition as a test of a record's value; the definition's checks have made sure of its shape. */
export const compileCondition = (condition: Condition): Test => {
  if (condition.and !== undefined) {
    const parts = condition.and.map(compileCondition)
    return (v) => parts.every((p) => p(v))
  }
  if (condition.or !== undefined) {
    const parts = condition.or.map(compileCondition)
    return (v) => parts.some((p) => p(v))
  }
  if (condition.not !== undefined) {
    const inner = compileCondition(condition.not)
    return (v) => !inner(v)
  }
  return compileComparison(condition)
}

export const make = (settings: FilterSettings, _options: TaskOptions = {}) => {
  const matches = compileCondition(settings.where)
  return (records: ReadonlyArray<PipelineRecord>): TransformResult<FilterStats> => {
    let filtered = 0
    const out = mapValid(records, (record) => {
      if (matches(record.value)) return record
      filtered++
      return { ...record, status: "filtered" }
    })
    return {
      records: out.records,
      stats: {
        records: records.length,
        passed: records.length - out.skipped - filtered,
        filtered,
        invalidated: 0,
        skipped: out.skipped,
      },
    }
  }
}

export const definition = defineTask({
  type: "filter",
  settings: FilterSettings,
  make,
  writes: () => [],
})
