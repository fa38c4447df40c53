/**
 * The running service: makes sure the topics and the key index exist, builds the DAG from the
 * pipeline definition, and feeds every batch from the source through the processor until the
 * scope closes (SIGTERM/SIGINT) or the consumer gives up. Each batch takes the plan that is
 * current when it starts, so a reloaded definition (file change or SIGHUP) applies from the
 * next batch on. Consumer lag is refreshed from the broker, progress is logged periodically,
 * and the totals are logged when it stops.
 */
import { Clock, Duration, Effect, Layer, Metric, Option, Schedule } from "effect"
import { AppConfig, type AppSettings } from "../Config/AppConfig.js"
import { loadPipelineFile } from "../Config/PipelineFile.js"
import type { PipelineSpec } from "../Config/PipelineSpec.js"
import { checkSinkSettings } from "../Config/SinkChecks.js"
import { KafkaAdmin } from "../Kafka/KafkaAdmin.js"
import { KafkaClient } from "../Kafka/KafkaClient.js"
import { KafkaSource, type SourceOptions, type SourceShape } from "../Kafka/KafkaSource.js"
import { KafkaProducer } from "../Kafka/Producer.js"
import { ensureTopics } from "../Kafka/Topics.js"
import { KafkaTransactions } from "../Kafka/Transactions.js"
import { MongoDb } from "../Mongo/MongoDb.js"
import * as ConsumerLag from "../Observability/ConsumerLag.js"
import * as Metrics from "../Observability/Metrics.js"
import * as Progress from "../Observability/Progress.js"
import { Readiness } from "../Observability/Readiness.js"
import { scrub, secretsOfSettings } from "../Observability/Redaction.js"
import { Status, StatusFeed } from "../Observability/Status/Status.js"
import { WriteLanes } from "./Lanes.js"
import { buildPlan, liveSinks, type PipelinePlan } from "./PipelineDag.js"
import { makeProcessor } from "./Processor.js"
import { makeReloader, watchAndReload } from "./Reload.js"
import { Stalls, stallUndecodable, trackBatchAges, warnSlowBatches } from "./Stalls.js"

const tiersOf = (plan: PipelinePlan) => plan.dag.tiers.map((tier) => tier.join(" ")).join(" -> ")

/** The partitions' transactions with exactly_once; none with at_least_once. */
const transactionsFor = (delivery: "at_least_once" | "exactly_once") =>
  delivery === "at_least_once"
    ? Effect.succeed(undefined)
    : Effect.serviceOption(KafkaTransactions).pipe(
        Effect.flatMap((found) =>
          Option.isSome(found)
            ? Effect.succeed(found.value)
            : Effect.die(new Error("KAFKA__DELIVERY=exactly_once needs the Kafka transactions layer")),
        ),
      )

/** The time of this instance's last offset commit, as the source made it (in a transaction with exactly_once). */
const trackLastCommit = (source: SourceShape) =>
  Effect.flatMap(source.committed, (committed) => {
    let last = 0
    for (const { at } of committed.values()) last = Math.max(last, at)
    return last === 0 ? Effect.void : Metric.update(Metrics.lastCommit, last / 1000)
  })

/** Runs until the consumer crashes (a failure) or the fiber is interrupted (a clean stop). */
export const runPipeline = (spec: PipelineSpec) =>
  Effect.gen(function* () {
    const settings = yield* AppConfig
    const mongo = yield* MongoDb
    const producer = yield* KafkaProducer
    const source = yield* KafkaSource
    const stalls = yield* Stalls
    const status = yield* Status
    const transactions = yield* transactionsFor(settings.kafka.delivery)

    // A processor per plan: it holds no state of its own, and a batch keeps the one it began with.
    // The write lanes are shared, so that the order of writes within a partition holds across a reload.
    const lanes = new WriteLanes()
    const build = (definition: PipelineSpec) =>
      checkSinkSettings(settings, definition)
        .pipe(
          Effect.andThen(
            buildPlan(definition, liveSinks(mongo, producer, settings.kafka.topicSink), settings.pipeline),
          ),
        )
        .pipe(
          Effect.map((plan) => ({
            plan,
            processor: makeProcessor(
              plan,
              producer,
              {
                pipeline: settings.pipeline,
                maxMessageBytes: settings.kafka.maxMessageBytes,
                parsing: {
                  onTombstone: settings.mongodb.onTombstone,
                  maxKeyBytes: settings.pipeline.maxKeyBytes,
                  format: settings.pipeline.sourceFormat,
                },
                dlqTopic: settings.kafka.topicDlq,
                windows: { store: mongo.windows, group: settings.kafka.consumerGroup },
              },
              stalls,
              lanes,
              transactions,
            ),
          })),
        )
    const reloader = yield* makeReloader({
      file: settings.pipeline.file,
      initial: { spec, value: yield* build(spec) },
      load: loadPipelineFile,
      build,
      describe: (active) => tiersOf(active.plan),
    })

    const totals = Progress.emptyTotals()
    const startedAt = Date.now()
    yield* Effect.addFinalizer(() => Progress.logSummary(totals, startedAt))
    yield* source.consume(
      (batch) =>
        reloader.current.pipe(
          Effect.flatMap((active) => active.value.processor.handle(batch)),
          Effect.tap((summary) => Effect.sync(() => Progress.add(totals, summary))),
          Effect.asVoid,
          Effect.provideService(StatusFeed, status.feed),
        ),
      stallUndecodable(stalls, {
        baseDelay: settings.pipeline.retryDelay,
        maxDelay: settings.pipeline.maxRetryDelay,
      }),
    )
    const lag = yield* ConsumerLag.track({
      admin: yield* KafkaAdmin,
      topic: settings.kafka.topicSource,
      group: settings.kafka.consumerGroup,
      reset: settings.kafka.autoOffsetReset,
      every: ConsumerLag.refreshInterval(settings.metrics.progressInterval),
      local: source.committed,
    })
    yield* Progress.logProgress(totals, lag, settings.metrics.progressInterval)
    yield* status.attach({
      plan: reloader.current,
      joined: source.joined,
      assigned: source.assigned,
      committed: source.committed,
      lag,
      stalls: Effect.sync(() => stalls.current),
      batchAges: (now) => stalls.oldestBatchAge(now),
    })
    yield* Effect.forkScoped(
      trackBatchAges(stalls).pipe(
        Effect.andThen(trackLastCommit(source)),
        // Out of the group (a rejoin, an outage), the assignment is unknown: nothing is forgotten.
        Effect.andThen(
          Effect.flatMap(Effect.all([source.joined, source.assigned]), ([joined, assigned]) =>
            joined ? stalls.keepOnly(assigned) : Effect.void,
          ),
        ),
        Effect.repeat(Schedule.spaced("1 second")),
      ),
    )
    yield* Effect.forkScoped(
      warnSlowBatches(stalls, Duration.toMillis(settings.pipeline.stallTimeout)).pipe(
        Effect.repeat(Schedule.spaced("1 second")),
      ),
    )
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

/**
 * Ready while the consumer is in its group and can commit, MongoDB answers a ping, and no partition has been
 * stalled, nor had a batch in flight, for longer than PIPELINE__STALL_TIMEOUT_SECONDS. The
 * reasons never carry a secret.
 */
export const readinessLayer = Layer.effect(
  Readiness,
  Effect.gen(function* () {
    const settings = yield* AppConfig
    const source = yield* KafkaSource
    const mongo = yield* MongoDb
    const stalls = yield* Stalls
    const secrets = secretsOfSettings(settings)
    const clean = (text: string) => {
      const scrubbed = scrub(text, secrets)
      return scrubbed.length > 300 ? `${scrubbed.slice(0, 299)}…` : scrubbed
    }
    return Readiness.of({
      reasons: Effect.gen(function* () {
        const reasons: string[] = []
        if (!(yield* source.joined)) reasons.push("the Kafka consumer has not joined its group")
        const commitFailure = yield* source.commitFailure
        if (Option.isSome(commitFailure)) {
          const failure = commitFailure.value
          reasons.push(
            `offsets cannot be committed for ${Math.round((Date.now() - failure.since) / 1000)} s (the group no longer counts this instance as a member; rejoining): ${clean(failure.error)}`,
          )
        }
        const ping = yield* Effect.result(mongo.ping.pipe(Effect.timeout("2 seconds")))
        if (ping._tag === "Failure") reasons.push(`MongoDB does not answer: ${clean(ping.failure.message)}`)
        const now = yield* Clock.currentTimeMillis
        const after = Duration.toMillis(settings.pipeline.stallTimeout)
        for (const slow of stalls.slowBatches(after, now)) {
          reasons.push(
            `partition ${slow.partition}: the batch at offsets ${slow.offsets} has been in flight for ${Math.round((now - slow.since) / 1000)} s without an answer from its writes`,
          )
        }
        for (const stall of stalls.stalledLongerThan(after, now)) {
          reasons.push(
            `partition ${stall.partition} stalled for ${Math.round((now - stall.since) / 1000)} s at offsets ${stall.offsets}: ${stall.what} keeps failing (${stall.retries} retries): ${clean(stall.error)}`,
          )
        }
        return reasons
      }),
    })
  }),
)

/** What the source is told, from the service's settings. */
export const sourceOptions = ({ kafka, pipeline }: AppSettings): SourceOptions => ({
  brokers: kafka.brokers,
  topic: kafka.topicSource,
  group: kafka.consumerGroup,
  fromBeginning: kafka.autoOffsetReset === "earliest",
  sessionTimeout: kafka.sessionTimeout,
  commitInterval: kafka.commitInterval,
  // exactly_once: each batch's offset goes in the transaction with its writes.
  commitOffsets: kafka.delivery === "at_least_once",
  fetchMaxBytes: kafka.fetchMaxBytes,
  fetchMaxBytesPerPartition: kafka.fetchMaxBytesPerPartition,
  fetchMinBytes: kafka.fetchMinBytes,
  fetchMaxWait: kafka.fetchMaxWait,
  batchSize: pipeline.batchSize,
  batchesInFlight: pipeline.batchesInFlight,
  partitionsConcurrency: pipeline.partitionsConcurrency,
  maxInFlightBytes: pipeline.maxInFlightBytes,
  shutdownTimeout: pipeline.shutdownTimeout,
})

/** Kafka, MongoDB and configuration, torn down in order: consumer, transactional producers, producer, MongoDB. */
export const infrastructure = (config: Layer.Layer<AppConfig>) =>
  readinessLayer.pipe(
    Layer.provideMerge(
      KafkaSource.layer(AppConfig.use((settings) => Effect.succeed(sourceOptions(settings)))),
    ),
    Layer.provideMerge(KafkaTransactions.layer),
    Layer.provideMerge(KafkaProducer.layer),
    Layer.provideMerge(KafkaAdmin.layer),
    Layer.provide(Layer.effectDiscard(ensureTopics)),
    Layer.provideMerge(KafkaClient.layer),
    Layer.provideMerge(MongoDb.layer),
    Layer.provideMerge(Stalls.layer),
    Layer.provideMerge(Status.layer),
    Layer.provideMerge(config),
  )
