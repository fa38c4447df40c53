/**
 * From a decoded (and so checked) pipeline definition to what runs for every batch: the DAG
 * of transforms the executor runs, and the sinks the processor writes to once the DAG is done.
 * A transform reads the batch (no dependency), the records of its one upstream task, or the
 * merge of several (Merge.ts); transforms on independent branches run concurrently. Each sink
 * writes the records as they stand at the task it reads, after every transform (whatever it
 * reads), so that what a record is (invalid on any branch, refused by any sink) is known before
 * any sink writes it. Transforms are built once, so stateful ones (the duplicate check's
 * window) carry their state from batch to batch.
 */
import { Duration, Effect, Metric, Result } from "effect"
import type { AppSettings } from "../Config/AppConfig.js"
import { ancestorsOf } from "../Config/PipelineChecks.js"
import type { PipelineSpec, TaskSpec } from "../Config/PipelineSpec.js"
import { buildSink, isSink, isSinkTask, type SinkFactoriesOf } from "../Config/SinkKinds.js"
import * as Dag from "../Dag/Dag.js"
import type { DagValidationError } from "../Dag/Graph.js"
import type { RetrySettings } from "../Dag/Retry.js"
import * as Task from "../Dag/Task.js"
import type { PipelineRecord } from "../Domain/Record.js"
import type { ProducerShape } from "../Kafka/Producer.js"
import type { MongoDbShape } from "../Mongo/MongoDb.js"
import * as Metrics from "../Observability/Metrics.js"
import { StatusFeed } from "../Observability/Status/Status.js"
import type { KeyWindow } from "../Tasks/KeyWindow.js"
import { runTask, type TransformTask, writesOf } from "../Tasks/Library.js"
import type { TransformResult } from "../Tasks/Transform.js"
import { type Admission, makeAdmission } from "./Admission.js"
import type { ParsedBatch } from "./Batch.js"
import { type Branch, mergeBranches } from "./Merge.js"
import { kafkaSink, mongoSink, type Sink } from "./Sinks.js"
import type { DurableWindow } from "./Windows.js"

type Records = ReadonlyArray<PipelineRecord>

/** Every error of a pipeline task says whether a retry can help, and what happened. */
export type StageError = Task.TaskError & { readonly message: string }

const task = Task.builder<ParsedBatch, Records>()

/** Each transform's output of one batch, by name. */
export type Outputs = (transform: string) => Records

/** A sink of the plan, with the retry and the per-attempt timeout its definition gives it. */
export interface PlannedSink {
  readonly sink: Sink<StageError>
  /** How often a failure of unknown kind is tried again (the sink's own, or the pipeline's). */
  readonly retry: RetrySettings
  readonly timeout: Duration.Duration | undefined
}

export interface PipelinePlan {
  /** The transforms. */
  readonly dag: Dag.Dag<Record<string, unknown>, StageError, never, ParsedBatch>
  /** Every transform, in declaration order. */
  readonly transforms: ReadonlyArray<string>
  readonly sinks: ReadonlyArray<PlannedSink>
  /** The records a sink is given before admission: those of the task it reads, or the batch. */
  readonly inputOf: (sink: string, batch: ParsedBatch, outputs: Outputs) => Records
  /** What each sink is given of a batch, and what no sink may take; the processor asks once per batch. */
  readonly admit: (batch: ParsedBatch, outputs: Outputs) => Admission
  readonly retry: RetrySettings
  /** The duplicate checks whose windows are kept beside the documents (Windows.ts). */
  readonly windows: ReadonlyArray<DurableWindow>
  /** Every duplicate check's window, durable or not: the batch's deletes are noted in them. */
  readonly keyWindows: ReadonlyArray<KeyWindow>
}

/** How to build each kind of sink (Config/SinkKinds.ts); the live ones write to MongoDB and Kafka, tests pass their own. */
export type SinkFactories = SinkFactoriesOf<Sink<StageError>>

export const liveSinks = (
  mongo: MongoDbShape,
  producer: ProducerShape,
  sinkTopic: string,
): SinkFactories => ({
  mongodb_sink: (name, settings) => mongoSink(name, mongo, settings),
  kafka_sink: (name, settings) => kafkaSink(name, producer, sinkTopic, settings),
})

export const retrySettings = (settings: AppSettings["pipeline"]): RetrySettings => ({
  retryCount: settings.retryCount,
  baseDelay: settings.retryDelay,
  maxDelay: settings.maxRetryDelay,
})

/** A transform's counters for its batch (`pipeline_task_records_total`, the status page) and its levels (`pipeline_task_level`). */
const countStats = (task: string, result: TransformResult) =>
  Effect.all([
    Effect.forEach(
      Object.entries(result.stats),
      ([counter, n]) =>
        n === 0
          ? Effect.void
          : Metric.update(Metric.withAttributes(Metrics.taskRecords, { task, counter }), n),
      { discard: true },
    ),
    Effect.forEach(
      Object.entries(result.levels ?? {}),
      ([level, n]) => Metric.update(Metric.withAttributes(Metrics.taskLevel, { task, level }), n),
      { discard: true },
    ),
    StatusFeed.useSync((feed) => feed.taskCounted(task, result.stats, result.records)),
  ])

const taskRetry = (spec: TaskSpec, fallback: RetrySettings): RetrySettings | undefined =>
  spec.retry === undefined
    ? undefined
    : {
        retryCount: spec.retry.count,
        baseDelay: Duration.seconds(spec.retry.delaySeconds),
        maxDelay:
          spec.retry.maxDelaySeconds === undefined
            ? fallback.maxDelay
            : Duration.seconds(spec.retry.maxDelaySeconds),
      }

const common = (spec: TaskSpec, fallback: RetrySettings) => {
  const retry = taskRetry(spec, fallback)
  return {
    name: spec.name,
    dependsOn: spec.dependsOn,
    ...(retry === undefined ? {} : { retry }),
    ...(spec.timeoutSeconds === undefined ? {} : { timeout: Duration.seconds(spec.timeoutSeconds) }),
  }
}

export const buildPlan = (
  spec: PipelineSpec,
  sinkFactories: SinkFactories,
  settings: AppSettings["pipeline"],
): Effect.Effect<PipelinePlan, DagValidationError> =>
  Effect.suspend((): Effect.Effect<PipelinePlan, DagValidationError> => {
    const retry = retrySettings(settings)
    const transformSpecs = spec.tasks.filter((t) => !isSink(t.type))
    const transforms = transformSpecs.map((t) => t.name)
    const ancestors = ancestorsOf(transformSpecs)
    const writes = new Map(transformSpecs.map((t) => [t.name, writesOf(t as TransformTask)]))

    /** How a task with several upstream tasks merges them: what each branch after the first wrote. */
    const branchesOf = (dependsOn: ReadonlyArray<string>): ReadonlyArray<Branch> => {
      const first = new Set([dependsOn[0]!, ...(ancestors.get(dependsOn[0]!) ?? [])])
      return dependsOn.slice(1).map((upstream) => {
        const own = [upstream, ...(ancestors.get(upstream) ?? [])].filter((name) => !first.has(name))
        return { upstream, writes: own.flatMap((name) => writes.get(name) ?? []) }
      })
    }
    /** The records a task reads: the batch, its upstream's output, or the merge of its upstreams'. */
    const reader = (dependsOn: ReadonlyArray<string>) => {
      if (dependsOn.length === 0) return (batch: ParsedBatch, _outputs: Outputs): Records => batch.records
      if (dependsOn.length === 1) {
        const upstream = dependsOn[0]!
        return (_batch: ParsedBatch, outputs: Outputs): Records => outputs(upstream)
      }
      const merge = mergeBranches(dependsOn[0]!, branchesOf(dependsOn))
      return (_batch: ParsedBatch, outputs: Outputs): Records => merge(outputs)
    }

    const sinks: Array<PlannedSink> = []
    const sinkReaders = new Map<string, (batch: ParsedBatch, outputs: Outputs) => Records>()
    const tasks: Array<Task.Any> = []
    const windows: Array<DurableWindow> = []
    const keyWindows: Array<KeyWindow> = []
    for (const t of spec.tasks) {
      const read = reader(t.dependsOn)
      if (isSinkTask(t)) {
        sinks.push({
          sink: buildSink(sinkFactories, t),
          retry: taskRetry(t, retry) ?? retry,
          timeout: t.timeoutSeconds === undefined ? undefined : Duration.seconds(t.timeoutSeconds),
        })
        sinkReaders.set(t.name, read)
      } else {
        const transform = runTask(t, { maxKeyBytes: settings.maxKeyBytes })
        if (transform.durableWindow !== undefined)
          windows.push({ task: t.name, window: transform.durableWindow })
        if (transform.keyWindow !== undefined) keyWindows.push(transform.keyWindow)
        tasks.push(
          task({
            ...common(t, retry),
            run: (input) =>
              transform(read(input.context.payload, (name) => input.outputs.get(name))).pipe(
                Effect.tap((r) => countStats(t.name, r)),
                Effect.map((r) => r.records),
              ),
          }),
        )
      }
    }
    const inputOf = (sink: string, batch: ParsedBatch, outputs: Outputs): Records =>
      sinkReaders.get(sink)?.(batch, outputs) ?? batch.records
    // Read by the sink tasks when a batch runs, after every sink is known.
    const admit = makeAdmission(
      sinks.map((s) => s.sink),
      spec.key,
      settings,
      transforms,
      inputOf,
    )
    const built = Dag.makeResult(tasks)
    if (Result.isFailure(built)) return Effect.fail(built.failure)
    return Effect.succeed({
      dag: built.success as unknown as PipelinePlan["dag"],
      transforms,
      sinks,
      inputOf,
      admit,
      retry,
      windows,
      keyWindows,
    })
  })
