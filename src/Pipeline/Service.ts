/**
 * The running service: makes sure the topics and the key index exist, builds the DAG from the
 * pipeline definition, and feeds every batch from the source through the processor until the
 * scope closes (SIGTERM/SIGINT) or the consumer gives up. Prints a summary when it stops.
 */
import { Duration, Effect, Layer, Metric } from "effect"
import { AppConfig } from "../Config/AppConfig.js"
import type { PipelineSpec } from "../Config/PipelineSpec.js"
import { KafkaClient } from "../Kafka/KafkaClient.js"
import { KafkaSource } from "../Kafka/KafkaSource.js"
import { KafkaProducer } from "../Kafka/Producer.js"
import { ensureTopics } from "../Kafka/Topics.js"
import { MongoDb } from "../Mongo/MongoDb.js"
import * as Metrics from "../Observability/Metrics.js"
import { buildPlan } from "./PipelineDag.js"
import { type BatchSummary, makeProcessor } from "./Processor.js"

export interface Totals {
  batches: number
  consumed: number
  valid: number
  invalid: number
  malformed: number
  duplicates: number
  rejectedBySink: number
  failedBatch: number
  deadLettered: number
}

const emptyTotals = (): Totals => ({
  batches: 0,
  consumed: 0,
  valid: 0,
  invalid: 0,
  malformed: 0,
  duplicates: 0,
  rejectedBySink: 0,
  failedBatch: 0,
  deadLettered: 0,
})

const add = (totals: Totals, s: BatchSummary) => {
  totals.batches++
  totals.consumed += s.consumed
  totals.valid += s.valid
  totals.invalid += s.invalid
  totals.malformed += s.malformed
  totals.duplicates += s.duplicates
  totals.rejectedBySink += s.rejectedBySink
  totals.failedBatch += s.failedBatch
  totals.deadLettered += s.deadLettered
}

/** Runs until the consumer crashes (a failure) or the fiber is interrupted (a clean stop). */
export const runPipeline = (spec: PipelineSpec) =>
  Effect.gen(function* () {
    const settings = yield* AppConfig
    const mongo = yield* MongoDb
    const producer = yield* KafkaProducer
    const source = yield* KafkaSource
    const plan = yield* buildPlan(
      spec,
      { mongo, producer, sinkTopic: settings.kafka.topicSink },
      settings.pipeline,
    )
    const processor = makeProcessor(plan, producer, {
      pipeline: settings.pipeline,
      maxMessageBytes: settings.kafka.maxMessageBytes,
      dlqTopic: settings.kafka.topicDlq,
    })

    const totals = emptyTotals()
    const startedAt = Date.now()
    yield* Effect.addFinalizer(() =>
      Effect.logInfo("pipeline stopped").pipe(
        Effect.annotateLogs({
          summary: { ...totals, seconds: Math.round((Date.now() - startedAt) / 1000) },
        }),
      ),
    )
    yield* source.consume((chunk) =>
      processor.handle(chunk).pipe(
        Effect.tap((summary) =>
          Effect.sync(() => add(totals, summary)).pipe(
            Effect.andThen(Metric.update(Metrics.lastCommit, Date.now() / 1000)),
          ),
        ),
        Effect.asVoid,
      ),
    )
    yield* progressLog(totals, source, settings.metrics.progressInterval)
    yield* Effect.logInfo("pipeline running").pipe(
      Effect.annotateLogs({
        source: settings.kafka.topicSource,
        sink: settings.kafka.topicSink,
        dlq: settings.kafka.topicDlq,
        group: settings.kafka.consumerGroup,
        mongodb: `${settings.mongodb.database}.${settings.mongodb.collection}`,
        tasks: plan.dag.tiers.map((tier) => tier.join(" ")).join(" -> "),
      }),
    )
    return yield* source.crashed
  })

/** A periodic one-line progress report: records/s since the last line, invalid ratio, lag. */
const progressLog = (totals: Totals, source: KafkaSource["Service"], every: Duration.Duration) =>
  Duration.toMillis(every) === 0
    ? Effect.void
    : Effect.gen(function* () {
        let last = { at: Date.now(), consumed: 0 }
        yield* Effect.gen(function* () {
          yield* Effect.sleep(every)
          const now = Date.now()
          const committed = yield* source.committed
          let lag = 0n
          for (const [partition, c] of committed) {
            const raw = BigInt(c.highWatermark) - BigInt(c.offset)
            const behind = raw > 0n ? raw : 0n
            lag += behind
            yield* Metric.update(
              Metric.withAttributes(Metrics.consumerLag, { partition: String(partition) }),
              Number(behind),
            )
          }
          const rate = ((totals.consumed - last.consumed) * 1000) / Math.max(1, now - last.at)
          const turnedAway = totals.invalid + totals.malformed + totals.rejectedBySink + totals.failedBatch
          yield* Effect.logInfo(
            `progress: ${rate.toFixed(1)} records/s, ${totals.consumed} consumed, lag ${lag}, invalid ratio ${(turnedAway / Math.max(1, totals.consumed)).toFixed(3)}`,
          )
          last = { at: now, consumed: totals.consumed }
        }).pipe(Effect.forever, Effect.forkScoped)
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
