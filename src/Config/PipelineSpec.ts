/**
 * The pipeline as data (config/pipeline.yaml): the record key, the tasks with their settings
 * and dependencies, and the two sinks. Decoding is Schema (a union on `type` picks each task's
 * settings schema) followed by the checks Schema cannot make alone: the dependency graph
 * (Dag/Graph), exactly one sink of each kind, sinks last. A bad definition fails with one
 * PipelineSpecError naming every problem with its path, so it is fixed in one pass.
 */
import { Data, Effect, Result, Schema } from "effect"
import { PathString } from "../Domain/Path.js"
import { isJsonObject } from "../Domain/Record.js"
import { definitions, type TransformTask, withPipelineKey, writesOf } from "../Tasks/Library.js"
import { ruleNames } from "../Tasks/QualityRules.js"
import { mergeProblems, semanticProblems } from "./PipelineChecks.js"
import {
  issueProblems,
  type PathSegment,
  type SpecProblem,
  sortProblems,
  type TaggedUnionAt,
} from "./PipelineProblems.js"
import { isSinkTask, type SinkTask, sinkKinds } from "./SinkKinds.js"

export type { SpecProblem } from "./PipelineProblems.js"

/** Every task type a pipeline file may name: the task library's transforms, then the sinks. */
const kinds = [...definitions, ...sinkKinds]
export type TaskType = (typeof kinds)[number]["type"]
export const taskTypes: ReadonlyArray<TaskType> = kinds.map((kind) => kind.type)

const NonNegativeInt = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))
const NonNegative = Schema.Finite.check(Schema.isGreaterThanOrEqualTo(0))
const Positive = Schema.Finite.check(Schema.isGreaterThan(0))

const TaskName = Schema.String.check(
  Schema.makeFilter((name: string) =>
    /^[A-Za-z][A-Za-z0-9_-]*$/.test(name)
      ? undefined
      : `task names are letters, digits, "_" and "-", starting with a letter; got ${JSON.stringify(name)}`,
  ),
)

export const RetrySpec = Schema.Struct({
  count: NonNegativeInt,
  delaySeconds: NonNegative,
  maxDelaySeconds: Schema.optionalKey(Positive),
})
export type RetrySpec = typeof RetrySpec.Type

const common = {
  name: TaskName,
  dependsOn: Schema.Array(Schema.String).pipe(Schema.withDecodingDefaultKey(Effect.succeed([]))),
  retry: Schema.optionalKey(RetrySpec),
  timeoutSeconds: Schema.optionalKey(Positive),
}

/** Every field but `settings` and `type`: also checked for tasks of an unknown type. */
export const TaskCommon = Schema.Struct({
  ...common,
  type: Schema.Unknown,
  settings: Schema.optionalKey(Schema.Unknown),
})

const task = <const T extends string, S extends Schema.Top>(type: T, settings: S) =>
  Schema.Struct({ ...common, type: Schema.Literal(type), settings })

/** A task of one kind as the file writes it; a union on `type` picks the kind's settings. */
type TaskFileOf<K> = K extends {
  readonly type: infer T extends string
  readonly settings: infer S extends Schema.Top
}
  ? ReturnType<typeof task<T, S>>
  : never

export const TaskFile = Schema.Union(
  kinds.map((kind) => task(kind.type, kind.settings)) as ReadonlyArray<TaskFileOf<(typeof kinds)[number]>>,
)
export type TaskFile = typeof TaskFile.Type

const Key = Schema.Union([
  PathString,
  Schema.Array(PathString).check(Schema.isMinLength(1), Schema.isUnique()),
])

/** The file as written. */
export const PipelineFile = Schema.Struct({
  name: Schema.optionalKey(Schema.String),
  /** The record key field(s): what duplicates are judged by and what MongoDB upserts by. */
  key: Key,
  tasks: Schema.Array(TaskFile),
})

interface TaskCommonSpec {
  readonly name: string
  readonly dependsOn: ReadonlyArray<string>
  readonly retry?: RetrySpec
  readonly timeoutSeconds?: number
}

/** A decoded task: a transform from the task library or a sink, with its place in the graph. */
export type TaskSpec = (TransformTask | SinkTask) & TaskCommonSpec

export interface PipelineSpec {
  readonly name?: string
  readonly key: ReadonlyArray<string>
  readonly tasks: ReadonlyArray<TaskSpec>
}

export class PipelineSpecError extends Data.TaggedError("PipelineSpecError")<{
  /** The file (or other origin) of the definition. */
  readonly source: string
  readonly problems: ReadonlyArray<SpecProblem>
}> {
  override get message(): string {
    const count = this.problems.length === 1 ? "1 problem" : `${this.problems.length} problems`
    return `invalid pipeline definition ${this.source} (${count}):\n${this.problems.map((p) => `  - ${formatProblem(p)}`).join("\n")}`
  }
}

export const formatProblem = (problem: SpecProblem): string =>
  problem.path === "" ? problem.message : `${problem.path}: ${problem.message}`

const toSpec = (file: typeof PipelineFile.Type): PipelineSpec => {
  const key = typeof file.key === "string" ? [file.key] : file.key
  // Only the settings a file may leave to the pipeline differ from what the tasks run with.
  const tasks = file.tasks.map((task) => withPipelineKey(task, key) as TaskSpec)
  return file.name === undefined ? { key, tasks } : { name: file.name, key, tasks }
}

const unions: ReadonlyArray<TaggedUnionAt> = [
  {
    at: (path) => path.length === 2 && path[0] === "tasks",
    key: "type",
    label: "task type",
    known: taskTypes,
  },
  {
    at: (path) => path.length === 5 && path[0] === "tasks" && path[2] === "settings" && path[3] === "rules",
    key: "rule",
    label: "rule",
    known: ruleNames,
  },
]

/** A task of unknown type still has a name, dependencies, retry and timeout worth checking. */
const unknownTypeProblems = (input: unknown): Array<SpecProblem> => {
  if (typeof input !== "object" || input === null || !("tasks" in input) || !Array.isArray(input.tasks))
    return []
  return input.tasks.flatMap((task: unknown, index) => {
    // Not an object at all: the union's problem already says so.
    if (!isJsonObject(task)) return []
    const type = task.type
    if (typeof type === "string" && (taskTypes as ReadonlyArray<string>).includes(type)) return []
    const decoded = Schema.decodeUnknownResult(TaskCommon)(task, { errors: "all", onExcessProperty: "error" })
    const prefix: ReadonlyArray<PathSegment> = ["tasks", index]
    return Result.isFailure(decoded) ? issueProblems(decoded.failure.issue, task, unions, prefix) : []
  })
}

/** Decodes and checks a definition already read from its file (plain JSON-like data). */
export const validatePipelineSpec = (
  input: unknown,
  source = "(inline)",
): Result.Result<PipelineSpec, PipelineSpecError> => {
  const decoded = Schema.decodeUnknownResult(PipelineFile)(input, {
    errors: "all",
    onExcessProperty: "error",
  })
  const problems = Result.isFailure(decoded) ? issueProblems(decoded.failure.issue, input, unions) : []
  problems.push(...unknownTypeProblems(input), ...semanticProblems(input))
  if (problems.length > 0 || Result.isFailure(decoded)) {
    return Result.fail(new PipelineSpecError({ source, problems: sortProblems(problems) }))
  }
  const spec = toSpec(decoded.success)
  const merges = mergeProblems(
    spec.tasks.flatMap((task, index) =>
      isSinkTask(task) ? [] : [{ ...task, index, writes: writesOf(task) }],
    ),
  )
  if (merges.length > 0) return Result.fail(new PipelineSpecError({ source, problems: sortProblems(merges) }))
  return Result.succeed(spec)
}

export const decodePipelineSpec = (
  input: unknown,
  source?: string,
): Effect.Effect<PipelineSpec, PipelineSpecError> => Effect.fromResult(validatePipelineSpec(input, source))
