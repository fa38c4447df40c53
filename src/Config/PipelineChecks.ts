/**
 * The checks on a pipeline definition that look across tasks: the dependency graph (through
 * Dag/Graph: duplicate names, unknown dependencies, cycles, no tasks), one sink of each kind,
 * nothing after a sink, every sink after every transform so no record reaches a sink
 * unchecked, and the shape the runtime runs: the transforms form one chain whose last task
 * both sinks read. They read the raw definition, so they report even when some task failed to
 * decode (a typo in one task's settings does not hide a cycle).
 */
import { Result } from "effect"
import { type DagProblem, type GraphNode, validateGraph } from "../Dag/Graph.js"
import { isJsonObject } from "../Domain/Record.js"
import { transformTaskTypes } from "../Tasks/Library.js"
import type { SpecProblem } from "./PipelineProblems.js"

export const sinkTypes = ["mongodb_sink", "kafka_sink"] as const
export type SinkType = (typeof sinkTypes)[number]
export const taskTypes = [...transformTaskTypes, ...sinkTypes] as const
export type TaskType = (typeof taskTypes)[number]

export const isSink = (type: unknown): type is SinkType =>
  (sinkTypes as ReadonlyArray<unknown>).includes(type)
const isTransform = (type: unknown): boolean => (transformTaskTypes as ReadonlyArray<unknown>).includes(type)

/** A task as far as the checks across tasks look at it. */
export interface TaskNode extends GraphNode {
  readonly type: unknown
}

interface RawTask extends TaskNode {
  readonly index: number
}

/**
 * The transforms no other transform reads: the end of the chain, which the sinks read. A
 * valid definition has one (or none, when it has no transforms).
 */
export const chainEnds = (tasks: ReadonlyArray<TaskNode>): ReadonlyArray<string> => {
  const transforms = tasks.filter((task) => isTransform(task.type))
  const read = new Set(transforms.flatMap((task) => task.dependsOn))
  return transforms.filter((task) => !read.has(task.name)).map((task) => task.name)
}

const rawTasks = (input: unknown): ReadonlyArray<RawTask> | undefined => {
  if (!isJsonObject(input) || !Array.isArray(input.tasks)) return undefined
  return input.tasks.flatMap((task, index) => {
    if (!isJsonObject(task) || typeof task.name !== "string") return []
    // A lone name instead of a list is a decoding problem already; read it as meant, so the
    // graph checks do not add consequences of the same mistake.
    const dependsOn =
      typeof task.dependsOn === "string"
        ? [task.dependsOn]
        : Array.isArray(task.dependsOn)
          ? task.dependsOn.filter((name): name is string => typeof name === "string")
          : []
    return [{ index, name: task.name, dependsOn, type: task.type }]
  })
}

export const semanticProblems = (input: unknown): Array<SpecProblem> => {
  const tasks = rawTasks(input)
  if (tasks === undefined) return []
  const problems: Array<SpecProblem> = []
  const first = new Map<string, RawTask>()
  for (const task of tasks) if (!first.has(task.name)) first.set(task.name, task)
  const at = (name: string, field: string): string => `tasks[${first.get(name)?.index ?? 0}].${field}`

  const graph = validateGraph(tasks)
  if (Result.isFailure(graph)) {
    for (const problem of graph.failure.problems) problems.push(graphProblem(problem, tasks, at))
  }

  for (const type of sinkTypes) {
    const sinks = tasks.filter((task) => task.type === type)
    if (sinks.length === 0)
      problems.push({ path: "tasks", message: `no ${type} task; the pipeline needs exactly one` })
    for (const extra of sinks.slice(1)) {
      problems.push({
        path: `tasks[${extra.index}].type`,
        message: `a second ${type} task; the pipeline needs exactly one`,
      })
    }
  }
  for (const task of tasks) {
    for (const dependency of task.dependsOn) {
      if (isSink(first.get(dependency)?.type)) {
        problems.push({
          path: `tasks[${task.index}].dependsOn`,
          message: `"${dependency}" is a sink; no task can run after a sink`,
        })
      }
    }
  }
  if (Result.isSuccess(graph)) problems.push(...unguardedSinks(tasks, first))
  // The chain is the runtime's shape on top of a sound graph; on a broken one it only repeats
  // the problems above.
  if (problems.length === 0) problems.push(...chainProblems(tasks))
  return problems
}

const graphProblem = (
  problem: DagProblem,
  tasks: ReadonlyArray<RawTask>,
  at: (name: string, field: string) => string,
): SpecProblem => {
  switch (problem._tag) {
    case "EmptyGraph":
      return { path: "tasks", message: "the pipeline has no tasks" }
    case "DuplicateName": {
      const second = tasks.filter((task) => task.name === problem.name)[1]
      return { path: `tasks[${second?.index ?? 0}].name`, message: problem.message }
    }
    case "UnknownDependency":
      return { path: at(problem.task, "dependsOn"), message: `unknown task "${problem.dependency}"` }
    case "Cycle":
      return { path: at(problem.path[0] ?? "", "dependsOn"), message: problem.message }
  }
}

/** A sink must run after every transform, directly or through other tasks. */
const unguardedSinks = (
  tasks: ReadonlyArray<RawTask>,
  byName: ReadonlyMap<string, RawTask>,
): Array<SpecProblem> => {
  const transforms = tasks.filter((task) => isTransform(task.type)).map((task) => task.name)
  const problems: Array<SpecProblem> = []
  for (const sink of tasks.filter((task) => isSink(task.type))) {
    const before = new Set<string>()
    const stack = [...sink.dependsOn]
    while (stack.length > 0) {
      const name = stack.pop()!
      if (before.has(name)) continue
      before.add(name)
      stack.push(...(byName.get(name)?.dependsOn ?? []))
    }
    const missing = transforms.filter((name) => !before.has(name))
    if (missing.length > 0) {
      problems.push({
        path: `tasks[${sink.index}].dependsOn`,
        message: `sink "${sink.name}" does not run after ${missing.map((name) => `"${name}"`).join(", ")}; records would reach it unchecked`,
      })
    }
  }
  return problems
}

/**
 * The runtime runs a chain: each transform reads one upstream task, the transforms end in one
 * task, and each sink reads that task's records. Parallel transform branches would leave it
 * unclear which version of a record is the one to write.
 */
const chainProblems = (tasks: ReadonlyArray<RawTask>): Array<SpecProblem> => {
  const problems: Array<SpecProblem> = []
  for (const task of tasks) {
    if (isTransform(task.type) && task.dependsOn.length > 1) {
      problems.push({
        path: `tasks[${task.index}].dependsOn`,
        message: `a transform reads one upstream task; "${task.name}" depends on ${task.dependsOn.map((d) => `"${d}"`).join(", ")}`,
      })
    }
  }
  const ends = chainEnds(tasks)
  if (ends.length > 1) {
    problems.push({
      path: "tasks",
      message: `the transforms must form one chain; it ends in ${ends.map((e) => `"${e}"`).join(", ")}`,
    })
    return problems
  }
  // A sink that misses a transform, or reads a sink, is reported above already.
  const last = ends[0]
  for (const sink of tasks.filter((task) => isSink(task.type))) {
    if (last !== undefined && sink.dependsOn.includes(last) && sink.dependsOn.length > 1) {
      problems.push({
        path: `tasks[${sink.index}].dependsOn`,
        message: `sink "${sink.name}" reads the last transform ("${last}") alone; it depends on ${sink.dependsOn.map((d) => `"${d}"`).join(", ")}`,
      })
    }
  }
  return problems
}
