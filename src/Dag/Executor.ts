/**
 * Runs a DAG for one pipeline context. Every task gets a fiber that waits for its own
 * dependencies (not for a tier), so a slow branch never holds back an independent one; a
 * semaphore bounds how many attempts run at once. A task that fails after its retries makes
 * its transitive dependents skipped while independent branches go on. Each task's errors,
 * timeouts and defects become its result, so the run itself cannot fail; interrupting it
 * interrupts every task fiber, running finalizers, and nothing new starts.
 */
import { Clock, Data, Deferred, Duration, Effect, Semaphore } from "effect"
import type { Dag, PlannedTask } from "./Dag.js"
import type { PipelineContext } from "./PipelineContext.js"
import { noRetry, type RetrySettings, withRetry } from "./Retry.js"
import * as Task from "./Task.js"

/** Retryable: a hung attempt is usually a slow dependency that a later attempt gets past. */
export class TaskTimeoutError extends Data.TaggedError("TaskTimeoutError")<{
  readonly task: string
  readonly timeout: Duration.Duration
}> {
  readonly retryable = true
  override get message(): string {
    return `task "${this.task}" timed out after ${Duration.format(this.timeout)}`
  }
}

/** A bug in a task (a throw or a die) fails that task alone; retrying a bug is pointless. */
export class TaskDefectError extends Data.TaggedError("TaskDefectError")<{
  readonly task: string
  readonly defect: unknown
}> {
  readonly retryable = false
  override get message(): string {
    return `task "${this.task}" died: ${this.defect instanceof Error ? this.defect.message : String(this.defect)}`
  }
}

export type TaskFailure<E> = E | TaskTimeoutError | TaskDefectError

interface Timing {
  readonly name: string
  /** Attempts made, retries included; 0 for a skipped task. */
  readonly attempts: number
  /** From the start of the first attempt to the end of the last, backoff included. */
  readonly durationMs: number
}

export interface Succeeded extends Timing {
  readonly _tag: "Succeeded"
  readonly output: unknown
}

export interface Failed<E> extends Timing {
  readonly _tag: "Failed"
  readonly error: TaskFailure<E>
}

export interface Skipped extends Timing {
  readonly _tag: "Skipped"
  /** The task whose failure caused the skip (transitively: the task that failed, not a skipped one). */
  readonly failedDependency: string
}

export type TaskResult<E> = Succeeded | Failed<E> | Skipped

export interface DagResult<O, E> {
  /** One per task, in declaration order. */
  readonly tasks: ReadonlyArray<TaskResult<E>>
  readonly allSucceeded: boolean
  readonly result: (name: keyof O & string) => TaskResult<E> | undefined
  /** A task's output, if it succeeded. */
  readonly output: <K extends keyof O & string>(name: K) => O[K] | undefined
}

export interface ExecutorOptions {
  /** Attempts running at once (PIPELINE__MAX_WORKERS); at least 1. */
  readonly maxWorkers: number
  /** For tasks without their own; no retries when absent. */
  readonly retry?: RetrySettings
}

const skipped = (name: string, failedDependency: string): Skipped => ({
  _tag: "Skipped",
  name,
  failedDependency,
  attempts: 0,
  durationMs: 0,
})

export const run = <O, E extends Task.TaskError, R, P>(
  dag: Dag<O, E, R, P>,
  context: PipelineContext<P>,
  options: ExecutorOptions,
): Effect.Effect<DagResult<O, E>, never, R> =>
  Effect.suspend(() => {
    const plan = dag.plan
    const semaphore = Semaphore.makeUnsafe(Math.max(1, Math.floor(options.maxWorkers)))
    const results: Array<TaskResult<E>> = new Array(plan.length)
    const outputs: Array<unknown> = new Array(plan.length)
    const finished = plan.map(() => Deferred.makeUnsafe<TaskResult<E>>())
    const defaultRetry = options.retry ?? noRetry

    const runTask = (planned: PlannedTask<E, R, P>, i: number): Effect.Effect<void, never, R> =>
      Effect.gen(function* () {
        for (const dependency of planned.dependencies) {
          const upstream = yield* Deferred.await(finished[dependency]!)
          if (upstream._tag !== "Succeeded") {
            const failedDependency = upstream._tag === "Failed" ? upstream.name : upstream.failedDependency
            return yield* settle(i, skipped(planned.task.name, failedDependency))
          }
        }
        yield* settle(i, yield* attemptAll(planned, context, outputs, semaphore, defaultRetry))
      })

    const settle = (i: number, result: TaskResult<E>) =>
      Effect.suspend(() => {
        results[i] = result
        if (result._tag === "Succeeded") outputs[i] = result.output
        return Deferred.succeed(finished[i]!, result)
      })

    return Effect.forEach(plan, runTask, { concurrency: "unbounded", discard: true }).pipe(
      Effect.map((): DagResult<O, E> => {
        const byName = new Map(results.map((result) => [result.name, result]))
        return {
          tasks: results,
          allSucceeded: results.every((result) => result._tag === "Succeeded"),
          result: (name) => byName.get(name),
          output: (name) => {
            const result = byName.get(name)
            // Typed by the DAG: the task called `name` produced an `O[name]`.
            return result?._tag === "Succeeded" ? (result.output as O[typeof name]) : undefined
          },
        }
      }),
    )
  })

/** All attempts of one task, as one span with the batch's correlation id in its logs. */
const attemptAll = <E extends Task.TaskError, R, P>(
  planned: PlannedTask<E, R, P>,
  context: PipelineContext<P>,
  outputs: ReadonlyArray<unknown>,
  semaphore: Semaphore.Semaphore,
  defaultRetry: RetrySettings,
): Effect.Effect<TaskResult<E>, never, R> => {
  const { task, dependencyIndex } = planned
  const input: Task.TaskInput<P, Record<string, unknown>> = {
    context,
    outputs: {
      get: (name) => {
        const index = dependencyIndex.get(name)
        if (index === undefined)
          throw new Error(`task "${task.name}" read "${name}", which is not a dependency`)
        return outputs[index]
      },
    },
  }
  return Clock.clockWith((clock) => {
    let attempts = 0
    let startedAt = 0
    const attempt = Effect.suspend(() => {
      // Timed from inside the permit: waiting for a worker is not the task's time.
      if (attempts++ === 0) startedAt = clock.currentTimeMillisUnsafe()
      return task.run(input)
    }).pipe(
      (self): Effect.Effect<unknown, TaskFailure<E>, R> =>
        task.timeout === undefined
          ? self
          : Effect.timeoutOrElse(self, {
              duration: task.timeout,
              orElse: () => Effect.fail(new TaskTimeoutError({ task: task.name, timeout: task.timeout! })),
            }),
      Effect.catchDefect((defect) => Effect.fail(new TaskDefectError({ task: task.name, defect }))),
      // Per attempt, so that a task backing off between attempts does not hold a worker.
      semaphore.withPermits(1),
    )
    const elapsed = () => clock.currentTimeMillisUnsafe() - startedAt
    return withRetry(attempt, task.retry ?? defaultRetry, Task.isRetryable).pipe(
      Effect.matchEffect({
        onSuccess: (output): Effect.Effect<TaskResult<E>> =>
          Effect.succeed({ _tag: "Succeeded", name: task.name, output, attempts, durationMs: elapsed() }),
        onFailure: (error) => {
          const result: Failed<E> = {
            _tag: "Failed",
            name: task.name,
            error,
            attempts,
            durationMs: elapsed(),
          }
          return Effect.as(Effect.logWarning(`task failed after ${attempts} attempt(s)`, error), result)
        },
      }),
    )
  }).pipe(
    Effect.withSpan(task.name, { attributes: { "pipeline.correlation_id": context.correlationId } }),
    Effect.annotateLogs({ correlationId: context.correlationId, task: task.name }),
  )
}
