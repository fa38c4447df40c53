/**
 * A validated DAG of tasks: built from a list of tasks, checked when it is built (every problem
 * at once, see Graph), and compiled into the index-based plan the executor walks, so a run
 * does no name lookups beyond what tasks ask for.
 */
import { Effect, Result } from "effect"
import {
  type DagValidationError,
  type GraphNode,
  toMermaid as graphToMermaid,
  type Tiers,
  validateGraph,
} from "./Graph.js"
import type * as Task from "./Task.js"

export interface PlannedTask<E extends Task.TaskError, R, P> {
  readonly task: Task.Task<string, unknown, E, R, P>
  /** Indexes into `Dag.plan`, in `dependsOn` order. */
  readonly dependencies: ReadonlyArray<number>
  /** Dependency name to its index, for `outputs.get`. */
  readonly dependencyIndex: ReadonlyMap<string, number>
  /** Indexes of the tasks that depend on this one, in declaration order. */
  readonly dependents: ReadonlyArray<number>
}

/** `O` maps each task name to its output type; `E`, `R` and `P` are the tasks' errors, requirements and payload. */
export interface Dag<out O, out E extends Task.TaskError, out R, in P> {
  readonly plan: ReadonlyArray<PlannedTask<E, R, P>>
  readonly tiers: Tiers
  readonly nodes: ReadonlyArray<GraphNode>
  /** Phantom: carries the output types to the executor's result. */
  readonly _O?: (_: never) => O
}

export type Of<Tasks extends ReadonlyArray<Task.Any>> = Dag<
  Task.OutputsOf<Tasks[number]>,
  Task.Failure<Tasks[number]>,
  Task.Requirements<Tasks[number]>,
  Task.Payload<Tasks[number]>
>

export const makeResult = <const Tasks extends ReadonlyArray<Task.Any>>(
  tasks: Tasks,
): Result.Result<Of<Tasks>, DagValidationError> =>
  Result.map(validateGraph(tasks), (tiers): Of<Tasks> => {
    const index = new Map(tasks.map((task, i) => [task.name, i]))
    const dependents = tasks.map((): Array<number> => [])
    const plan = tasks.map((task, i) => {
      const dependencyIndex = new Map(task.dependsOn.map((name) => [name, index.get(name)!]))
      for (const dependency of dependencyIndex.values()) dependents[dependency]!.push(i)
      return {
        task,
        dependencies: [...dependencyIndex.values()],
        dependencyIndex,
        dependents: dependents[i]!,
      }
    })
    // `Of<Tasks>` is computed from the same tasks; TypeScript cannot relate the generic element type to it.
    return { plan, tiers, nodes: tasks } as unknown as Of<Tasks>
  })

/** Builds and validates; fails with a DagValidationError naming every problem. */
export const make = <const Tasks extends ReadonlyArray<Task.Any>>(
  tasks: Tasks,
): Effect.Effect<Of<Tasks>, DagValidationError> => Effect.fromResult(makeResult(tasks))

export const toMermaid = (dag: Dag<unknown, Task.TaskError, unknown, never>): string =>
  graphToMermaid(dag.nodes)
