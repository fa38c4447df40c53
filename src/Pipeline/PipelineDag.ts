/**
 * From a decoded pipeline definition to the DAG the executor runs for every batch. Transforms
 * form a chain (each reads the records of its one upstream task, the first reads the batch);
 * the sinks read the chain's last output and run in parallel. Transforms are built once, so
 * stateful ones (the duplicate check's window) carry their state from batch to batch.
 */
import { Data, Duration, Effect, Result } from "effect"
import type { AppSettings } from "../Config/AppConfig.js"
import type { KafkaSinkSettings, MongoSinkSettings, PipelineSpec, TaskSpec } from "../Config/PipelineSpec.js"
import * as Dag from "../Dag/Dag.js"
import type { DagValidationError } from "../Dag/Graph.js"
import type { RetrySettings } from "../Dag/Retry.js"
import * as Task from "../Dag/Task.js"
import type { PipelineRecord } from "../Domain/Record.js"
import type { ProducerShape } from "../Kafka/Producer.js"
import type { MongoDbShape } from "../Mongo/MongoDb.js"
import { runTask, type TransformTask } from "../Tasks/Library.js"
import { type Admission, makeAdmission } from "./Admission.js"
import type { Batch } from "./Batch.js"
import { kafkaSink, mongoSink, type Sink, type SinkOutcome } from "./Sinks.js"

type Records = ReadonlyArray<PipelineRecord>

/** Every error of a pipeline task says whether a retry can help, and what happened. */
export type StageError = Task.TaskError & { readonly message: string }

/** The definition is valid on its own but not a shape this runtime can run. */
export class PipelineShapeError extends Data.TaggedError("PipelineShapeError")<{
  readonly problems: ReadonlyArray<string>
}> {
  override get message() {
    return `the pipeline cannot run as declared:\n${this.problems.map((p) => `  - ${p}`).join("\n")}`
  }
}

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
  options: { readonly replaceBatchSize: number },
): SinkFactories => ({
  mongodb: (name, settings) => mongoSink(name, mongo, settings, options),
  kafka: (name, settings) => kafkaSink(name, producer, sinkTopic, settings),
})

const isSink = (t: TaskSpec): t is Extract<TaskSpec, { type: "mongodb_sink" | "kafka_sink" }> =>
  t.type === "mongodb_sink" || t.type === "kafka_sink"

export const retrySettings = (settings: AppSettings["pipeline"]): RetrySettings => ({
  retryCount: settings.retryCount,
  baseDelay: settings.retryDelay,
  maxDelay: settings.maxRetryDelay,
})

/**
 * The shape rules the runtime relies on, beyond what the definition's own checks say: a chain
 * of transforms whose records the sinks share. Parallel transform branches would leave it
 * unclear which version of a record is the one to write.
 */
export const shapeProblems = (spec: PipelineSpec): ReadonlyArray<string> => {
  const problems: string[] = []
  const transforms = spec.tasks.filter((t) => !isSink(t))
  const sinks = spec.tasks.filter(isSink)
  const transformNames = new Set(transforms.map((t) => t.name))
  for (const t of transforms) {
    if (t.dependsOn.length > 1) {
      problems.push(
        `task "${t.name}": a transform reads one upstream task, it depends on ${t.dependsOn.join(", ")}`,
      )
    }
  }
  const upstream = new Set(transforms.flatMap((t) => t.dependsOn))
  const ends = transforms.filter((t) => !upstream.has(t.name)).map((t) => t.name)
  if (ends.length > 1) problems.push(`the transforms must form one chain; it ends in ${ends.join(", ")}`)
  if (sinks.length === 0) problems.push("the pipeline has no sink (mongodb_sink or kafka_sink)")
  for (const s of sinks) {
    const wanted = ends[0]
    const ok =
      wanted === undefined ? s.dependsOn.length === 0 : s.dependsOn.length === 1 && s.dependsOn[0] === wanted
    if (!ok) {
      problems.push(
        `sink "${s.name}": must depend on the last transform${wanted === undefined ? "" : ` ("${wanted}")`}, it depends on [${s.dependsOn.join(", ")}]`,
      )
    }
    if (s.dependsOn.some((d) => !transformNames.has(d))) {
      problems.push(`sink "${s.name}": depends on a sink; sinks only read transform output`)
    }
  }
  return problems
}

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
): Effect.Effect<PipelinePlan, DagValidationError | PipelineShapeError> =>
  Effect.suspend((): Effect.Effect<PipelinePlan, DagValidationError | PipelineShapeError> => {
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
            run: (input) => Effect.map(transform(inputOf(input, t.dependsOn)), (r) => r.records),
          })
        }
      }
    })
    // Read by the sink tasks when a batch runs, after every sink is known.
    const admit = makeAdmission(sinks, spec.key, settings)
    const problems = shapeProblems(spec)
    if (problems.length > 0) return Effect.fail(new PipelineShapeError({ problems }))
    const built = Dag.makeResult(tasks)
    if (Result.isFailure(built)) return Effect.fail(built.failure)
    const transforms = spec.tasks.filter((t) => !isSink(t))
    const upstream = new Set(transforms.flatMap((t) => t.dependsOn))
    return Effect.succeed({
      dag: built.success as unknown as PipelinePlan["dag"],
      last: transforms.find((t) => !upstream.has(t.name))?.name,
      sinks,
      admit,
      retry,
    })
  })
