/**
 * The checks on a pipeline definition that look across tasks: the dependency graph (through
 * Dag/Graph: duplicate names, unknown dependencies, cycles, no tasks), one sink of each kind,
 * nothing after a sink, a sink reads one task, a task does not read the same upstream twice
 * (directly, or once directly and once through another task it reads). They read the raw
 * definition, so they report even when some task failed to decode (a typo in one task's
 * settings does not hide a cycle). `mergeProblems` needs the decoded settings: branches that
 * run in parallel and merge must not write the same field.
 */
import { Result } from "effect"
import { type DagProblem, type GraphNode, validateGraph } from "../Dag/Graph.js"
import { isJsonObject } from "../Domain/Record.js"
import type { SpecProblem } from "./PipelineProblems.js"
import { isSink, sinkTypes } from "./SinkKinds.js"

/** A task as far as the checks across tasks look at it. */
export interface TaskNode extends GraphNode {
  readonly type: unknown
}

interface RawTask extends TaskNode {
  readonly index: number
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
  for (const sink of tasks.filter((task) => isSink(task.type))) {
    if (sink.dependsOn.length > 1) {
      problems.push({
        path: `tasks[${sink.index}].dependsOn`,
        message: `sink "${sink.name}" reads the records of one task; it depends on ${quoted(sink.dependsOn)}`,
      })
    }
  }
  if (Result.isSuccess(graph)) problems.push(...readTwice(tasks, first))
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

const quoted = (names: ReadonlyArray<string>) => names.map((name) => `"${name}"`).join(", ")

/** Every task above each task (its dependencies, theirs, and so on), by name; the graph is acyclic. */
export const ancestorsOf = (tasks: ReadonlyArray<GraphNode>): ReadonlyMap<string, ReadonlySet<string>> => {
  const byName = new Map(tasks.map((task) => [task.name, task]))
  const known = new Map<string, Set<string>>()
  const visit = (name: string): Set<string> => {
    const done = known.get(name)
    if (done !== undefined) return done
    const above = new Set<string>()
    known.set(name, above)
    for (const dependency of byName.get(name)?.dependsOn ?? []) {
      above.add(dependency)
      for (const further of visit(dependency)) above.add(further)
    }
    return above
  }
  for (const task of tasks) visit(task.name)
  return known
}

/** A task reads each upstream once: not twice by name, not also through another task it reads. */
const readTwice = (
  tasks: ReadonlyArray<RawTask>,
  byName: ReadonlyMap<string, RawTask>,
): Array<SpecProblem> => {
  const ancestors = ancestorsOf(tasks)
  const problems: Array<SpecProblem> = []
  // A sink with more than one dependency is reported on its own.
  for (const task of tasks.filter((t) => !isSink(t.type))) {
    const seen = new Set<string>()
    for (const dependency of task.dependsOn) {
      if (seen.has(dependency)) {
        problems.push({
          path: `tasks[${task.index}].dependsOn`,
          message: `"${dependency}" is listed twice`,
        })
      }
      seen.add(dependency)
    }
    for (const dependency of seen) {
      const through = [...seen].find((other) => other !== dependency && ancestors.get(other)?.has(dependency))
      if (through !== undefined && byName.has(dependency)) {
        problems.push({
          path: `tasks[${task.index}].dependsOn`,
          message: `task "${task.name}" reads "${dependency}" twice: directly and through "${through}"; depend on "${through}" alone`,
        })
      }
    }
  }
  return problems
}

/** A transform as the merge check sees it: its place in the graph and the fields it may write. */
export interface WritingTask extends GraphNode {
  readonly writes: ReadonlyArray<string>
}

/** Two dot paths touch the same data when one is the other or lies inside it; `*` touches all. */
const overlap = (a: string, b: string): boolean =>
  a === "*" || b === "*" || a === b || a.startsWith(`${b}.`) || b.startsWith(`${a}.`)

/**
 * Transforms that run in parallel (neither is above the other) and whose records merge later
 * (both are above one task) must not write the same field: the merge could not tell which
 * version to keep. One problem per pair and field, naming both tasks and the first merge.
 */
export const mergeProblems = (
  transforms: ReadonlyArray<WritingTask & { readonly index: number }>,
): Array<SpecProblem> => {
  const ancestors = ancestorsOf(transforms)
  const above = (a: string, b: string) => ancestors.get(b)?.has(a) === true
  const problems: Array<SpecProblem> = []
  for (let i = 0; i < transforms.length; i++) {
    for (let j = i + 1; j < transforms.length; j++) {
      const a = transforms[i]!
      const b = transforms[j]!
      if (above(a.name, b.name) || above(b.name, a.name)) continue
      const merges = transforms.filter(
        (t) => t.dependsOn.length > 1 && above(a.name, t.name) && above(b.name, t.name),
      )
      // The first merge: the one with the fewest tasks above it.
      const merge = merges.sort(
        (x, y) => (ancestors.get(x.name)?.size ?? 0) - (ancestors.get(y.name)?.size ?? 0),
      )[0]
      if (merge === undefined) continue
      const fields = new Set<string>()
      for (const x of a.writes) for (const y of b.writes) if (overlap(x, y)) fields.add(x === "*" ? y : x)
      for (const field of fields) {
        problems.push({
          path: `tasks[${b.index}]`,
          message: `tasks "${a.name}" and "${b.name}" run in parallel and both write ${field === "*" ? "every field" : `"${field}"`}; their records merge at "${merge.name}"`,
        })
      }
    }
  }
  return problems
}
