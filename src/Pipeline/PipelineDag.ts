/**
 * From a decoded (and so checked) pipeline definition to the DAG the executor runs for every
 * batch. Transforms form a chain (each reads the records of its one upstream task, the first
 * reads the batch); the sinks read the chain's last output and run in parallel. Transforms are built once, so
 * stateful ones (the duplicate check's window) carry their state from batch to batch.
 */
import { Duration, Effect, Metric, Result } from "effect"
import type { AppSettings } from "../Config/AppConfig.js"
import { chainEnds } from "../Config/PipelineChecks.js"
import type { KafkaSinkSettings, MongoSinkSettings, PipelineSpec, TaskSpec } from "../Config/PipelineSpec.js"
import * as Dag from "../Dag/Dag.js"
import type { DagValidationError } from "../Dag/Graph.js"
import type { RetrySettings } from "../Dag/Retry.js"
import * as Task from "../Dag/Task.js"
import type { PipelineRecord } from "../Domain/Record.js"
import type { ProducerShape } from "../Kafka/Producer.js"
import type { MongoDbShape } from "../Mongo/MongoDb.js"
import * as Metrics from "../Observability/Metrics.js"
import { runTask, type TransformTask } from "../Tasks/Library.js"
import type { TaskResult } from "../Tasks/Task.js"
import { type Admission, makeAdmission } from "./Admission.js"
import type { Batch } from "./Batch.js"
import { kafkaSink, mongoSink, type Sink, type SinkOutcome } from "./Sinks.js"

type Records = ReadonlyArray<PipelineRecord>

/** Every error of a pipeline task says whether a retry can help, and what happened. */
export type StageError = Task.TaskError & { readonly message: string }

const task = Task.builder<Batch, Records>()

export interface PipelinePlan {
  readonly dag: Dag.Dag<Record<string, unknown>, StageError, never, Batch>
  /** The transform whose output the sinks read (undefined when there are no transforms). */
  readonly last: string | undefined
  readonly sinks: ReadonlyArray<Sink<StageError>>
  /** What the sinks are given of a batch's records (the same answer for the same records). */
  readonly admit: (records: Records, origin: Batch["origin"]) => Admission
  readonly retry: RetrySettings
}

/** How to build each kind of sink; the live ones write to MongoDB and Kafka, tests pass their own. */
export interface SinkFactories {
  readonly mongodb: (name: string, settings: MongoSinkSettings) => Sink<StageError>
  readonly kafka: (name: string, settings: KafkaSinkSettings) => Sink<StageError>
}

export const liveSinks = (
  mongo: MongoDbShape,
  producer: ProducerShape,
  sinkTopic: string,
): SinkFactories => ({
  mongodb: (name, settings) => mongoSink(name, mongo, settings),
  kafka: (name, settings) => kafkaSink(name, producer, sinkTopic, settings),
})

export const retrySettings = (settings: AppSettings["pipeline"]): RetrySettings => ({
  retryCount: settings.retryCount,
  baseDelay: settings.retryDelay,
  maxDelay: settings.maxRetryDelay,
})

/** A transform's counters for its batch (`pipeline_task_records_total`) and its levels (`pipeline_task_level`). */
const countStats = (task: string, result: TaskResult) =>
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

const inputOf = (
  input: Task.TaskInput<Batch, Record<string, Records>>,
  dependsOn: ReadonlyArray<string>,
): Records => (dependsOn[0] === undefined ? input.context.payload.records : input.outputs.get(dependsOn[0]))

export const buildPlan = (
  spec: PipelineSpec,
  sinkFactories: SinkFactories,
  settings: AppSettings["pipeline"],
): Effect.Effect<PipelinePlan, DagValidationError> =>
  Effect.suspend((): Effect.Effect<PipelinePlan, DagValidationError> => {
    const retry = retrySettings(settings)
    const sinks: Array<Sink<StageError>> = []
    const tasks = spec.tasks.map((t): Task.Any => {
      switch (t.type) {
        case "mongodb_sink":
        case "kafka_sink": {
          const sink: Sink<StageError> =
            t.type === "mongodb_sink"
              ? sinkFactories.mongodb(t.name, t.settings)
              : sinkFactories.kafka(t.name, t.settings)
          sinks.push(sink)
          return task({
            ...common(t, retry),
            run: (input): Effect.Effect<SinkOutcome, StageError> => {
              const { origin } = input.context.payload
              return sink.write(admit(inputOf(input, t.dependsOn), origin).admitted, origin)
            },
          })
        }
        default: {
          const transform = runTask(t as TransformTask, { maxKeyBytes: settings.maxKeyBytes })
          return task({
            ...common(t, retry),
            run: (input) =>
              transform(inputOf(input, t.dependsOn)).pipe(
                Effect.tap((r) => countStats(t.name, r)),
                Effect.map((r) => r.records),
              ),
          })
        }
      }
    })
    // Read by the sink tasks when a batch runs, after every sink is known.
    const admit = makeAdmission(sinks, spec.key, settings)
    const built = Dag.makeResult(tasks)
    if (Result.isFailure(built)) return Effect.fail(built.failure)
    return Effect.succeed({
      dag: built.success as unknown as PipelinePlan["dag"],
      // One end: the definition's checks (Config/PipelineChecks.ts) allow no other shape.
      last: chainEnds(spec.tasks)[0],
      sinks,
      admit,
      retry,
    })
  })
