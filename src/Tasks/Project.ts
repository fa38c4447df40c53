/**
 * Project: keeps only the listed fields (dot paths; a nested field keeps its parents), in the
 * order listed; everything else is left out of the record as this task passes it on. Meant for
 * a sink's own branch (e.g. a slim message for the sink topic while MongoDB gets the full
 * record). It never makes a record invalid: a listed field that is missing is simply absent.
 */
import { Schema } from "effect"
import { getPath, type Path, PathString, parsePath, setPath } from "../Domain/Path.js"
import type { JsonObject, PipelineRecord } from "../Domain/Record.js"
import { defineTask, everyField, mapValid, type TaskOptions, type TransformResult } from "./Transform.js"

export const ProjectSettings = Schema.Struct({
  fields: Schema.Array(PathString).check(Schema.isMinLength(1)),
})
export type ProjectSettings = typeof ProjectSettings.Type

export type ProjectStats = {
  readonly records: number
  readonly projected: number
  readonly invalidated: number
  readonly skipped: number
}

export const make = (settings: ProjectSettings, _options: TaskOptions = {}) => {
  const paths: ReadonlyArray<Path> = settings.fields.map(parsePath)
  return (records: ReadonlyArray<PipelineRecord>): TransformResult<ProjectStats> => {
    const out = mapValid(records, (record) => {
      const value: JsonObject = {}
      for (const path of paths) {
        const field = getPath(record.value, path)
        if (field !== undefined) setPath(value, path, field)
      }
      return { ...record, value }
    })
    return {
      records: out.records,
      stats: {
        records: records.length,
        projected: records.length - out.skipped,
        invalidated: 0,
        skipped: out.skipped,
      },
    }
  }
}

export const definition = defineTask({
  type: "project",
  settings: ProjectSettings,
  make,
  writes: () => [everyField],
})
