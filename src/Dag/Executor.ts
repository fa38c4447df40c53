/**
 * Runs a DAG for one pipeline context. A task starts as soon as its own dependencies have
 * succeeded (not when its tier is done), so a slow branch never holds back an independent one;
 * a semaphore bounds how many attempts run at once. A task that fails after its retries makes
 * its transitive dependents skipped while independent branches go on. Each task's errors,
 * timeouts and defects become its result, so the run itself cannot fail. Interrupting the run
 * interrupts every running task (their finalizers run) and starts nothing new.
 */
import { Cause, Clock, Data, Deferred, Duration, Effect, Exit, Result, Scope, Semaphore } from "effect"
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

/**
 * Each fiber runs a task and then, inline, one of the tasks it made runnable (forking the
 * others into the run's scope), so a chain costs one fiber rather than one per task. All task
 * fibers live in that scope: closing it on interruption interrupts them all at once.
 */
export const run = <O, E extends Task.TaskError, R, P>(
  dag: Dag<O, E, R, P>,
  context: PipelineContext<P>,
  options: ExecutorOptions,
): Effect.Effect<DagResult<O, E>, never, R> =>
  Clock.clockWith((clock) => new DagRun<O, E, R, P>(dag.plan, context, options, clock).run())

// The run state is a class, and callbacks are inline arrows, because per-run closures stored
// under a name are measurably slower when the code is loaded through tsx (it renames each one).
class DagRun<O, E extends Task.TaskError, R, P> {
  /** Undefined when there are at least as many workers as tasks: the bound cannot bind then. */
  readonly semaphore: Semaphore.Semaphore | undefined
  readonly defaultRetry: RetrySettings
  readonly results: Array<TaskResult<E>>
  readonly outputs: Array<unknown>
  readonly waitingOn: Array<number>
  readonly allSettled = Deferred.makeUnsafe<void>()
  readonly scope = Scope.makeUnsafe("parallel")
  unsettled: number
  /**
   * Set before the scope closes: nothing starts after it, and an interrupted task can be told
   * apart from one that interrupted itself.
   */
  stopped = false

  constructor(
    readonly plan: ReadonlyArray<PlannedTask<E, R, P>>,
    readonly context: PipelineContext<P>,
    options: ExecutorOptions,
    readonly clock: Clock.Clock,
  ) {
    const workers = Math.max(1, Math.floor(options.maxWorkers))
    this.semaphore = workers < plan.length ? Semaphore.makeUnsafe(workers) : undefined
    this.defaultRetry = options.retry ?? noRetry
    this.results = new Array(plan.length)
    this.outputs = new Array(plan.length)
    this.waitingOn = plan.map((planned) => planned.dependencies.length)
    this.unsettled = plan.length
  }

  run(): Effect.Effect<DagResult<O, E>, never, R> {
    const roots: Array<number> = []
    for (let i = 0; i < this.plan.length; i++) if (this.plan[i]!.dependencies.length === 0) roots.push(i)
    return Effect.forEach(roots, (i) => this.start(i), { discard: true }).pipe(
      Effect.andThen(Deferred.await(this.allSettled)),
      Effect.onExit(() => {
        this.stopped = true
        return Scope.close(this.scope, Exit.void)
      }),
      Effect.map(() => dagResult<O, E>(this.results)),
    )
  }

  start(i: number): Effect.Effect<unknown, never, R> {
    return Effect.forkIn(this.chain(i), this.scope, { startImmediately: true })
  }

  chain(i: number): Effect.Effect<void, never, R> {
    return Effect.suspend(() =>
      this.stopped
        ? Effect.void
        : Effect.flatMap(new TaskRun(this.plan[i]!, this).run(), (result) => {
            const [next, ...others] = this.settle(i, result)
            if (this.stopped || next === undefined) return Effect.void
            return others.length === 0
              ? this.chain(next)
              : Effect.andThen(
                  Effect.forEach(others, (j) => this.start(j), { discard: true }),
                  this.chain(next),
                )
          }),
    )
  }

  /** Records a result, skips what it blocks and returns the tasks it made runnable. */
  settle(i: number, result: TaskResult<E>): Array<number> {
    this.results[i] = result
    if (result._tag === "Succeeded") this.outputs[i] = result.output
    this.unsettled--
    const runnable: Array<number> = []
    for (const dependent of this.plan[i]!.dependents) {
      if (--this.waitingOn[dependent]! > 0) continue
      const blocker = this.blockerOf(dependent)
      if (blocker === undefined) runnable.push(dependent)
      else runnable.push(...this.settle(dependent, skipped(this.plan[dependent]!.task.name, blocker)))
    }
    if (this.unsettled === 0) Deferred.doneUnsafe(this.allSettled, Exit.void)
    return runnable
  }

  /** The failed task that blocks task `i`, found through its first unsuccessful dependency. */
  blockerOf(i: number): string | undefined {
    for (const dependency of this.plan[i]!.dependencies) {
      const upstream = this.results[dependency]!
      if (upstream._tag === "Failed") return upstream.name
      if (upstream._tag === "Skipped") return upstream.failedDependency
    }
    return undefined
  }
}

/** One task in one run: its attempts, its timing, and the outputs it may read. */
class TaskRun<E extends Task.TaskError, R, P> implements Task.Outputs<Record<string, unknown>> {
  readonly input: Task.TaskInput<P, Record<string, unknown>>
  attempts = 0
  startedAt = 0

  constructor(
    readonly planned: PlannedTask<E, R, P>,
    readonly dagRun: DagRun<unknown, E, R, P>,
  ) {
    this.input = { context: dagRun.context, outputs: this }
  }

  get(name: string): unknown {
    const index = this.planned.dependencyIndex.get(name)
    if (index === undefined) {
      throw new Error(`task "${this.planned.task.name}" read "${name}", which is not one of its dependencies`)
    }
    return this.dagRun.outputs[index]
  }

  attempt(): Effect.Effect<unknown, E, R> {
    // Timed from inside the permit: waiting for a worker is not the task's time.
    if (this.attempts++ === 0) this.startedAt = this.dagRun.clock.currentTimeMillisUnsafe()
    return this.planned.task.run(this.input)
  }

  run(): Effect.Effect<TaskResult<E>, never, R> {
    const { task } = this.planned
    const { context, semaphore } = this.dagRun
    let once: Effect.Effect<unknown, TaskFailure<E>, R> = Effect.suspend(() => this.attempt())
    if (task.timeout !== undefined) once = withTimeout(once, task.name, task.timeout)
    // A permit per attempt, so that a task backing off between attempts does not hold a worker.
    if (semaphore !== undefined) once = semaphore.withPermits(1)(once)
    const traced = withRetry(once, task.retry ?? this.dagRun.defaultRetry, Task.isRetryable).pipe(
      // Inside the conversion to a result, so that the span ends with the task's own outcome.
      Effect.withSpan(
        task.name,
        { attributes: { "pipeline.correlation_id": context.correlationId } },
        // The creation site is always this file; capturing it costs more than a trivial task.
        { captureStackTrace: false },
      ),
    )
    return Effect.flatMap(Effect.exit(traced), (exit) => this.toResult(exit)).pipe(
      Effect.annotateLogs({ correlation_id: context.correlationId, task: task.name }),
    )
  }

  toResult(exit: Exit.Exit<unknown, TaskFailure<E>>): Effect.Effect<TaskResult<E>> {
    const name = this.planned.task.name
    const timing = {
      name,
      attempts: this.attempts,
      durationMs: this.dagRun.clock.currentTimeMillisUnsafe() - this.startedAt,
    }
    if (Exit.isSuccess(exit)) return Effect.succeed({ _tag: "Succeeded", output: exit.value, ...timing })
    // Interrupted because the run is: let the interruption through. A task that interrupts
    // itself otherwise is a bug in that task, and must not leave the run waiting for it.
    if (this.dagRun.stopped && Cause.hasInterrupts(exit.cause))
      return Effect.failCause(exit.cause as Cause.Cause<never>)
    const found = Cause.findError(exit.cause)
    const error = Result.isSuccess(found)
      ? found.success
      : new TaskDefectError({ task: name, defect: Cause.squash(exit.cause) })
    const result: Failed<E> = { _tag: "Failed", error, ...timing }
    return Effect.as(Effect.logWarning(`task failed after ${this.attempts} attempt(s)`, error), result)
  }
}

const withTimeout = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  task: string,
  timeout: Duration.Duration,
): Effect.Effect<A, E | TaskTimeoutError, R> =>
  Effect.timeoutOrElse(effect, {
    duration: timeout,
    orElse: () => Effect.fail(new TaskTimeoutError({ task, timeout })),
  })

const dagResult = <O, E>(results: ReadonlyArray<TaskResult<E>>): DagResult<O, E> => {
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
}
