/**
 * FieldMapping: moves and renames fields (dot paths at both ends), fills defaults and, when
 * asked, drops everything that is not mapped or kept.
 *
 * - All sources are read from the record as it came, before anything moves, so swaps
 *   (a -> b, b -> a) work.
 * - A moved field is removed from its old place; an object left empty by the move goes too.
 * - `default` fills a source that is missing or null. Without a default a missing source
 *   leaves the target unset (a NotNull rule reports it); `required: true` makes the record
 *   invalid here instead.
 * - A target that would have to pass through a non-object ("a.b" when "a" is a string)
 *   makes the record invalid rather than overwrite data.
 */
import { Effect, Schema } from "effect"
import { deletePath, getPath, type Path, PathString, parsePath, setPath } from "../Domain/Path.js"
import type { Json, JsonObject, PipelineRecord, Reason } from "../Domain/Record.js"
import { defineTask, everyField, type TaskOptions, type TransformResult } from "./Transform.js"

export const FieldMappingRule = Schema.Struct({
  from: PathString,
  /** Defaults to `from`: the field stays where it is (useful with `default` or `required`). */
  to: Schema.optionalKey(PathString),
  default: Schema.optionalKey(Schema.MutableJson),
  required: Schema.Boolean.pipe(Schema.withDecodingDefaultKey(Effect.succeed(false))),
})

export const FieldMappingSettings = Schema.Struct({
  mappings: Schema.Array(FieldMappingRule),
  /** Fields carried over unchanged when `dropUnmapped` is set. */
  keep: Schema.Array(PathString).pipe(Schema.withDecodingDefaultKey(Effect.succeed([]))),
  dropUnmapped: Schema.Boolean.pipe(Schema.withDecodingDefaultKey(Effect.succeed(false))),
})
export type FieldMappingSettings = typeof FieldMappingSettings.Type

export type FieldMappingStats = {
  readonly records: number
  readonly mapped: number
  readonly defaulted: number
  readonly missing: number
  readonly invalidated: number
  readonly skipped: number
}

interface CompiledRule {
  readonly from: Path
  readonly fromText: string
  readonly to: Path
  readonly toText: string
  readonly moves: boolean
  readonly fallback: Json | undefined
  readonly required: boolean
}

export const make = (settings: FieldMappingSettings, options: TaskOptions = {}) => {
  const task = options.name ?? "field_mapping"
  const rules: ReadonlyArray<CompiledRule> = settings.mappings.map((rule) => {
    const to = rule.to ?? rule.from
    return {
      from: parsePath(rule.from),
      fromText: rule.from,
      to: parsePath(to),
      toText: to,
      moves: to !== rule.from,
      fallback: rule.default,
      required: rule.required,
    }
  })
  const keep = settings.keep.map(parsePath)
  const dropUnmapped = settings.dropUnmapped

  return (records: ReadonlyArray<PipelineRecord>): TransformResult<FieldMappingStats> => {
    const out: Array<PipelineRecord> = new Array(records.length)
    let mapped = 0
    let defaulted = 0
    let missing = 0
    let invalidated = 0
    let skipped = 0
    const values: Array<Json | undefined> = new Array(rules.length)

    for (let r = 0; r < records.length; r++) {
      const record = records[r]!
      if (record.status !== "valid") {
        out[r] = record
        skipped++
        continue
      }
      const source = record.value
      let reasons: Array<Reason> | undefined
      for (let i = 0; i < rules.length; i++) {
        const rule = rules[i]!
        let value = getPath(source, rule.from)
        if ((value === undefined || value === null) && rule.fallback !== undefined) {
          value = copyDefault(rule.fallback)
          defaulted++
        } else if (value === undefined) {
          missing++
          if (rule.required) {
            reasons ??= []
            reasons.push({
              task,
              field: rule.fromText,
              rule: "Required",
              message: `missing field "${rule.fromText}"`,
            })
          }
        }
        values[i] = value
      }

      let target: JsonObject
      if (dropUnmapped) {
        target = {}
        for (const path of keep) {
          const value = getPath(source, path)
          if (value !== undefined) setPath(target, path, value)
        }
      } else {
        target = { ...source }
        for (const rule of rules) if (rule.moves) deletePath(target, rule.from, true)
      }
      for (let i = 0; i < rules.length; i++) {
        const value = values[i]
        if (value === undefined) continue
        const rule = rules[i]!
        if (!setPath(target, rule.to, value)) {
          reasons ??= []
          reasons.push({
            task,
            field: rule.toText,
            rule: "PathConflict",
            message: `cannot set "${rule.toText}": a value that is not an object is in the way`,
          })
        }
      }

      mapped++
      if (reasons === undefined) {
        out[r] = { ...record, value: target }
      } else {
        invalidated++
        out[r] = { ...record, value: target, status: "invalid", reasons: [...record.reasons, ...reasons] }
      }
    }
    return {
      records: out,
      stats: { records: records.length, mapped, defaulted, missing, invalidated, skipped },
    }
  }
}

// A default is shared by every record; a copy keeps one record's value from being another's.
const copyDefault = (value: Json): Json =>
  typeof value === "object" && value !== null ? structuredClone(value) : value

export const definition = defineTask({
  type: "field_mapping",
  settings: FieldMappingSettings,
  make,
  writes: (settings) =>
    settings.dropUnmapped
      ? [everyField]
      : settings.mappings.flatMap((m) => (m.to === undefined || m.to === m.from ? [m.from] : [m.to, m.from])),
})
