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
import * as Standardization from "./Standardization.js"
import type { TaskOptions, TaskResult, Transform } from "./Task.js"
import * as TypeConversion from "./TypeConversion.js"

export const transformTaskTypes = [
  "field_mapping",
  "type_conversion",
  "standardization",
  "duplicate_check",
  "data_quality",
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
