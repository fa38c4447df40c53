/**
 * The task library by type name, for whoever builds a pipeline from its definition: a
 * decoded task in, its transform out. Every task type is one module exporting its definition
 * (Transform.ts: type name, settings, constructor, the fields it writes) and one line in
 * `definitions`; the unions and the dispatch below follow from that list. `runTask` wraps a
 * transform in an Effect for the DAG executor, with what the task does after a batch (the
 * data-quality threshold).
 */
import { Effect } from "effect"
import type { PipelineRecord } from "../Domain/Record.js"
import * as DataQuality from "./DataQuality.js"
import * as DuplicateCheck from "./DuplicateCheck.js"
import * as FieldMapping from "./FieldMapping.js"
import * as Filter from "./Filter.js"
import type { KeyWindow } from "./KeyWindow.js"
import * as Project from "./Project.js"
import * as Standardization from "./Standardization.js"
import type { TaskOptions, Transform, TransformResult } from "./Transform.js"
import * as TypeConversion from "./TypeConversion.js"

export { everyField } from "./Transform.js"

/** Every transform a pipeline file may name, in the order `validate` lists them. */
export const definitions = [
  FieldMapping.definition,
  TypeConversion.definition,
  Standardization.definition,
  DuplicateCheck.definition,
  DataQuality.definition,
  Filter.definition,
  Project.definition,
] as const

type Definition = (typeof definitions)[number]

export type TransformTaskType = Definition["type"]
export const transformTaskTypes: ReadonlyArray<TransformTaskType> = definitions.map((d) => d.type)

type TaskOf<D> = D extends {
  readonly type: infer Type
  readonly make: (settings: infer Settings, options: TaskOptions) => unknown
}
  ? { readonly name: string; readonly type: Type; readonly settings: Settings }
  : never

/** A decoded transform task: its name, type and the settings it runs with. */
export type TransformTask = TaskOf<Definition>

/** What a task may fail with after a batch (a crossed data-quality threshold with action fail). */
export type TransformError = Definition extends {
  readonly afterBatch?: (result: never, task: string) => Effect.Effect<void, infer E>
}
  ? E
  : never

/** A definition as the dispatch sees it: the settings are the task's own, as the type name promises. */
interface Erased {
  readonly withPipelineKey?: (settings: never, key: ReadonlyArray<string>) => unknown
  readonly make: (settings: never, options: TaskOptions) => Transform
  readonly writes: (settings: never) => ReadonlyArray<string>
  readonly afterBatch?: (result: never, task: string) => Effect.Effect<void, TransformError>
}

const byType: ReadonlyMap<string, Erased> = new Map<string, Erased>(definitions.map((d) => [d.type, d]))

const definitionOf = (type: string): Erased | undefined => byType.get(type)

/**
 * A task as the file declared it, with what its settings may leave to the pipeline filled in
 * (the duplicate check's key); a sink, or a task with nothing to fill, as it is.
 */
export const withPipelineKey = <T extends { readonly type: string; readonly settings: unknown }>(
  task: T,
  key: ReadonlyArray<string>,
): T => {
  const complete = definitionOf(task.type)?.withPipelineKey
  return complete === undefined ? task : { ...task, settings: complete(task.settings as never, key) }
}

/** Builds the task's transform. Stateful tasks (the duplicate check) keep their state in it: build once, reuse for every batch. */
export const makeTransform = (task: TransformTask, options: Omit<TaskOptions, "name"> = {}): Transform =>
  definitionOf(task.type)!.make(task.settings as never, { ...options, name: task.name })

/** The fields a transform may change in a record's value (TaskDefinition.writes). */
export const writesOf = (task: TransformTask): ReadonlyArray<string> =>
  definitionOf(task.type)!.writes(task.settings as never)

/**
 * The task as an Effect over a batch: the transform runs synchronously, once for the whole
 * batch; then what the task does after a batch, such as a crossed data-quality threshold
 * logged or failing with QualityThresholdExceeded.
 */
export const runTask = (
  task: TransformTask,
  options: Omit<TaskOptions, "name"> = {},
): ((records: ReadonlyArray<PipelineRecord>) => Effect.Effect<TransformResult, TransformError>) & {
  readonly durableWindow?: KeyWindow
  readonly keyWindow?: KeyWindow
} => {
  const transform = makeTransform(task, options)
  const afterBatch = definitionOf(task.type)!.afterBatch
  const durable = {
    ...(transform.durableWindow === undefined ? {} : { durableWindow: transform.durableWindow }),
    ...(transform.keyWindow === undefined ? {} : { keyWindow: transform.keyWindow }),
  }
  if (afterBatch === undefined)
    return Object.assign(
      (records: ReadonlyArray<PipelineRecord>) => Effect.sync(() => transform(records)),
      durable,
    )
  return Object.assign(
    (records: ReadonlyArray<PipelineRecord>) =>
      Effect.sync(() => transform(records)).pipe(
        Effect.tap((result) => afterBatch(result as never, task.name)),
      ),
    durable,
  )
}
