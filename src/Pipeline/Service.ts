/**
 * The running service: makes sure the topics and the key index exist, builds the DAG from the
 * pipeline definition, and feeds every batch from the source through the processor until the
 * scope closes (SIGTERM/SIGINT) or the consumer gives up. Each batch takes the plan that is
 * current when it starts, so a reloaded definition (file change or SIGHUP) applies from the
 * next batch on. Consumer lag is refreshed from the broker, progress is logged periodically,
 * and the totals are logged when it stops.
 */
import { Effect, Layer, Metric } from "effect"
import { loadSpec } from "../Cli.js"
import { AppConfig } from "../Config/AppConfig.js"
import type { PipelineSpec } from "../Config/PipelineSpec.js"
import { KafkaClient } from "../Kafka/KafkaClient.js"
import { KafkaSource } from "../Kafka/KafkaSource.js"
import { KafkaProducer } from "../Kafka/Producer.js"
import { ensureTopics } from "../Kafka/Topics.js"
import { MongoDb } from "../Mongo/MongoDb.js"
import * as ConsumerLag from "../Observability/ConsumerLag.js"
import * as Metrics from "../Observability/Metrics.js"
import * as Progress from "../Observability/Progress.js"
import { buildPlan, liveSinks, type PipelinePlan } from "./PipelineDag.js"
import { makeProcessor } from "./Processor.js"
import { makeReloader, watchAndReload } from "./Reload.js"

const tiersOf = (plan: PipelinePlan) => plan.dag.tiers.map((tier) => tier.join(" ")).join(" -> ")

/** Runs until the consumer crashes (a failure) or the fiber is interrupted (a clean stop). */
export const runPipeline = (spec: PipelineSpec) =>
  Effect.gen(function* () {
    const settings = yield* AppConfig
    const mongo = yield* MongoDb
    const producer = yield* KafkaProducer
    const source = yield* KafkaSource
    const client = yield* KafkaClient

    // A processor per plan: it holds no state of its own, and a batch keeps the one it began with.
    const build = (definition: PipelineSpec) =>
      buildPlan(definition, liveSinks(mongo, producer, settings.kafka.topicSink), settings.pipeline).pipe(
        Effect.map((plan) => ({
          plan,
          processor: makeProcessor(plan, producer, {
            pipeline: settings.pipeline,
            maxMessageBytes: settings.kafka.maxMessageBytes,
            dlqTopic: settings.kafka.topicDlq,
          }),
        })),
      )
    const reloader = yield* makeReloader({
      file: settings.pipeline.file,
      initial: { spec, value: yield* build(spec) },
      load: loadSpec,
      build,
      describe: (active) => tiersOf(active.plan),
    })

    const totals = Progress.emptyTotals()
    const startedAt = Date.now()
    yield* Effect.addFinalizer(() => Progress.logSummary(totals, startedAt))
    yield* source.consume((chunk) =>
      reloader.current.pipe(
        Effect.flatMap((active) => active.value.processor.handle(chunk)),
        Effect.tap((summary) =>
          Effect.sync(() => Progress.add(totals, summary)).pipe(
            Effect.andThen(Metric.update(Metrics.lastCommit, Date.now() / 1000)),
          ),
        ),
        Effect.asVoid,
      ),
    )
    const lag = yield* ConsumerLag.track({
      admin: yield* ConsumerLag.scopedAdmin(client),
      topic: settings.kafka.topicSource,
      group: settings.kafka.consumerGroup,
      reset: settings.kafka.autoOffsetReset,
      every: ConsumerLag.refreshInterval(settings.metrics.progressInterval),
      local: source.committed,
    })
    yield* Progress.logProgress(totals, lag, settings.metrics.progressInterval)
    yield* watchAndReload(reloader, settings.pipeline.file)
    const active = yield* reloader.current
    yield* Effect.logInfo("pipeline running").pipe(
      Effect.annotateLogs({
        source: settings.kafka.topicSource,
        sink: settings.kafka.topicSink,
        dlq: settings.kafka.topicDlq,
        group: settings.kafka.consumerGroup,
        mongodb: `${settings.mongodb.database}.${settings.mongodb.collection}`,
        pipeline_file: settings.pipeline.file,
        tasks: tiersOf(active.value.plan),
      }),
    )
    return yield* source.crashed
  })

/** Kafka, MongoDB and configuration, torn down in order: consumer, producer, MongoDB. */
export const infrastructure = (config: Layer.Layer<AppConfig>) =>
  KafkaSource.layer.pipe(
    Layer.provideMerge(KafkaProducer.layer),
    Layer.provide(Layer.effectDiscard(ensureTopics)),
    Layer.provideMerge(KafkaClient.layer),
    Layer.provideMerge(MongoDb.layer),
    Layer.provideMerge(config),
  )
