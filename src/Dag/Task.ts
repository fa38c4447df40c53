/**
 * A task: a named unit of the DAG, an Effect from the pipeline context and its dependencies'
 * outputs to its own output, with an optional retry override and a per-attempt timeout.
 *
 * Retryability is a property of the error value, not of its message: every error a task can
 * fail with implements `TaskError` (`readonly retryable: boolean`), typically as a field of a
 * tagged error class. Only errors with `retryable: true` are retried.
 *
 * Dependencies come in two forms:
 * - task values (`dependsOn: [quality]`): `outputs.get("quality")` is typed from that task;
 * - names (`dependsOn: ["quality"]`), for DAGs declared as data: every dependency is read as
 *   the builder's input type `I` (see `builder`), which the pipeline fixes once for all of its
 *   tasks. The graph is checked by name when the DAG is built; the types of named
 *   dependencies are the caller's promise.
 */
import { Duration, type Effect } from "effect"
import type { PipelineContext } from "./PipelineContext.js"
import type { RetrySettings } from "./Retry.js"

export interface TaskError {
  readonly retryable: boolean
}

export const isRetryable = (error: unknown): boolean =>
  typeof error === "object" && error !== null && "retryable" in error && error.retryable === true

/** The outputs of a task's dependencies, by name; nothing else can be read. */
export interface Outputs<Deps> {
  get<K extends keyof Deps & string>(name: K): Deps[K]
}

export interface TaskInput<P, Deps> {
  readonly context: PipelineContext<P>
  readonly outputs: Outputs<Deps>
}

export interface Task<out Name extends string, out A, out E extends TaskError, out R, in P> {
  readonly name: Name
  readonly dependsOn: ReadonlyArray<string>
  /** Overrides the executor's retry settings for this task. */
  readonly retry: RetrySettings | undefined
  /** Bounds each attempt; a timed-out attempt fails with a (retryable) TaskTimeoutError. */
  readonly timeout: Duration.Duration | undefined
  readonly run: (input: TaskInput<P, Record<string, unknown>>) => Effect.Effect<A, E, R>
}

/** Any task, whatever its name, output, errors, requirements and payload. */
export type Any = Task<string, unknown, TaskError, unknown, never>

export type Name<T> = T extends Task<infer N, unknown, TaskError, unknown, never> ? N : never
export type Success<T> = T extends Task<string, infer A, TaskError, unknown, never> ? A : never
export type Failure<T> = T extends Task<string, unknown, infer E, unknown, never> ? E : never
export type Requirements<T> = T extends Task<string, unknown, TaskError, infer R, never> ? R : never
/** Contravariant, so a union of tasks infers the intersection of their payloads. */
export type Payload<T> = [T] extends [Task<string, unknown, TaskError, unknown, infer P>] ? P : never

/** Outputs of a union of tasks, keyed by task name. */
export type OutputsOf<T extends Any> = { readonly [K in T as Name<K>]: Success<K> }

interface Common<Name extends string> {
  readonly name: Name
  readonly retry?: RetrySettings
  readonly timeout?: Duration.Input
}

export interface Make<P, I> {
  <
    const Name extends string,
    A,
    E extends TaskError = never,
    R = never,
    const Deps extends ReadonlyArray<Any> = [],
  >(
    options: Common<Name> & {
      readonly dependsOn?: Deps
      readonly run: (input: TaskInput<P, OutputsOf<Deps[number]>>) => Effect.Effect<A, E, R>
    },
  ): Task<Name, A, E, R, P>
  <const Name extends string, A, E extends TaskError = never, R = never>(
    options: Common<Name> & {
      readonly dependsOn: ReadonlyArray<string>
      readonly run: (input: TaskInput<P, Record<string, I>>) => Effect.Effect<A, E, R>
    },
  ): Task<Name, A, E, R, P>
}

/**
 * A `make` for tasks that read a payload of type `P` and whose dependencies named by string
 * produce `I`; a pipeline calls it once (`const task = Task.builder<Batch, Records>()`).
 */
export const builder = <P = unknown, I = unknown>(): Make<P, I> =>
  // The one place where dependency types are erased: the executor hands each task exactly the
  // outputs of the dependencies its `Make` signature typed, so the erasure is never observable.
  ((options: {
    readonly name: string
    readonly dependsOn?: ReadonlyArray<Any | string>
    readonly run: Any["run"]
    readonly retry?: RetrySettings
    readonly timeout?: Duration.Input
  }): Any => ({
    name: options.name,
    dependsOn: (options.dependsOn ?? []).map((dependency) =>
      typeof dependency === "string" ? dependency : dependency.name,
    ),
    retry: options.retry,
    timeout: options.timeout === undefined ? undefined : Duration.fromInputUnsafe(options.timeout),
    run: options.run,
  })) as unknown as Make<P, I>

/** Tasks whose payload and named dependencies are not typed; prefer `builder` in a pipeline. */
export const make: Make<unknown, unknown> = builder()
