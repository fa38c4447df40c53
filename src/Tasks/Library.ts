/**
 * The task library by type name, for whoever builds a pipeline from its definition: a
 * decoded task in, its transform out. `runTask` wraps a transform in an Effect for the DAG
 * executor; a data-quality task there also acts on its batch threshold.
 */
import { Effect } from "effect"
import type { PipelineRecord } from "../Domain/Record.js"
import * as DataQuality from "./DataQuality.js"
import * as DuplicateCheck from "./DuplicateCheck.js"
import * as FieldMapping from "./FieldMapping.js"
import * as Filter from "./Filter.js"
import * as Project from "./Project.js"
import * as Standardization from "./Standardization.js"
import type { TaskOptions, TaskResult, Transform } from "./Task.js"
import * as TypeConversion from "./TypeConversion.js"

export const transformTaskTypes = [
  "field_mapping",
  "type_conversion",
  "standardization",
  "duplicate_check",
  "data_quality",
  "filter",
  "project",
] as const
export type TransformTaskType = (typeof transformTaskTypes)[number]

export type TransformTask =
  | {
      readonly name: string
      readonly type: "field_mapping"
      readonly settings: FieldMapping.FieldMappingSettings
    }
  | {
      readonly name: string
      readonly type: "type_conversion"
      readonly settings: TypeConversion.TypeConversionSettings
    }
  | {
      readonly name: string
      readonly type: "standardization"
      readonly settings: Standardization.StandardizationSettings
    }
  | {
      readonly name: string
      readonly type: "duplicate_check"
      readonly settings: DuplicateCheck.DuplicateCheckSettings
    }
  | {
      readonly name: string
      readonly type: "data_quality"
      readonly settings: DataQuality.DataQualitySettings
    }
  | { readonly name: string; readonly type: "filter"; readonly settings: Filter.FilterSettings }
  | { readonly name: string; readonly type: "project"; readonly settings: Project.ProjectSettings }

/** Builds the task's transform. Stateful tasks (the duplicate check) keep their state in it: build once, reuse for every batch. */
export const makeTransform = (task: TransformTask, options: Omit<TaskOptions, "name"> = {}): Transform => {
  const withName: TaskOptions = { ...options, name: task.name }
  switch (task.type) {
    case "field_mapping":
      return FieldMapping.make(task.settings, withName)
    case "type_conversion":
      return TypeConversion.make(task.settings, withName)
    case "standardization":
      return Standardization.make(task.settings, withName)
    case "duplicate_check":
      return DuplicateCheck.make(task.settings, withName)
    case "data_quality":
      return DataQuality.make(task.settings, withName)
    case "filter":
      return Filter.make(task.settings, withName)
    case "project":
      return Project.make(task.settings, withName)
  }
}

/** Every field a record may have. */
export const everyField = "*"

/**
 * The fields a transform may change (set, move, remove) in a record's value, as dot paths, or
 * `everyField` when it may change any. Statuses and reasons are not fields: branches merge
 * them by their own rule. Read at load, to refuse parallel branches that write the same field.
 */
export const writesOf = (task: TransformTask): ReadonlyArray<string> => {
  switch (task.type) {
    case "field_mapping":
      return task.settings.dropUnmapped
        ? [everyField]
        : task.settings.mappings.flatMap((m) =>
            m.to === undefined || m.to === m.from ? [m.from] : [m.to, m.from],
          )
    case "type_conversion":
      return task.settings.fields.map((f) => f.field)
    case "standardization":
      return task.settings.fields.map((f) => f.field)
    case "duplicate_check":
      return task.settings.action === "mark" ? [task.settings.markField] : []
    case "data_quality":
    case "filter":
      return []
    case "project":
      return [everyField]
  }
}

/**
 * The task as an Effect over a batch: the transform runs synchronously, once for the whole
 * batch; a crossed data-quality threshold is logged or fails with QualityThresholdExceeded.
 */
export const runTask = (
  task: TransformTask,
  options: Omit<TaskOptions, "name"> = {},
): ((
  records: ReadonlyArray<PipelineRecord>,
) => Effect.Effect<TaskResult, DataQuality.QualityThresholdExceeded>) => {
  if (task.type === "data_quality") {
    const transform = DataQuality.make(task.settings, { ...options, name: task.name })
    return (records) =>
      Effect.sync(() => transform(records)).pipe(
        Effect.tap((result) => DataQuality.enforceThreshold(result, task.name)),
      )
  }
  const transform = makeTransform(task, options)
  return (records) => Effect.sync(() => transform(records))
}
