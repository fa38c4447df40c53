/**
 * One batch, start to finish: parse the messages, run the DAG, make sure both sinks and the
 * dead-letter topic have acknowledged everything, and only then return (the source commits
 * after that). Every message ends in exactly one place: the sinks (valid), the dead-letter
 * topic (malformed, invalid, rejected by a sink, or in a batch whose transform failed), or the
 * duplicate count.
 *
 * A sink that still fails after its retries does not let the batch move on: the processor
 * retries that sink for the same records with a capped backoff until it succeeds or the
 * service shuts down ("stalled"), and says so in the logs and the `pipeline_stalled` gauge.
 */
import { Clock, Duration, Effect, Metric, Schedule } from "effect"
import type { KafkaMessage, Message } from "kafkajs"
import type { AppSettings } from "../Config/AppConfig.js"
import type { DagResult } from "../Dag/Executor.js"
import * as Executor from "../Dag/Executor.js"
import * as PipelineContext from "../Dag/PipelineContext.js"
import type { PipelineRecord, Reason } from "../Domain/Record.js"
import type { Chunk } from "../Kafka/KafkaSource.js"
import { type BatchOrigin, deadLetterMessage, type Stage } from "../Kafka/Messages.js"
import type { ProducerShape } from "../Kafka/Producer.js"
import * as Metrics from "../Observability/Metrics.js"
import type { Batch } from "./Batch.js"
import { parseMessages } from "./Parse.js"
import type { PipelinePlan, StageError } from "./PipelineDag.js"
import type { SinkOutcome, SinkRejection } from "./Sinks.js"

/** What happened to one batch; every consumed message is counted exactly once. */
export interface BatchSummary {
  readonly correlationId: string
  readonly consumed: number
  readonly valid: number
  readonly invalid: number
  readonly malformed: number
  readonly duplicates: number
  readonly rejectedBySink: number
  readonly failedBatch: number
  readonly deadLettered: number
  readonly written: Readonly<Record<string, number>>
}

export interface ProcessorSettings {
  readonly pipeline: AppSettings["pipeline"]
  readonly maxMessageBytes: number
  readonly dlqTopic: string
}

interface DeadLetter {
  readonly message: KafkaMessage
  readonly stage: Stage
  readonly reasons: ReadonlyArray<Reason>
}

/** Backs off like every retry in the service, but never gives up: a batch is written or the service stops. */
const stallSchedule = (settings: AppSettings["pipeline"]) =>
  Schedule.min([
    Schedule.jittered(Schedule.exponential(Duration.max(settings.retryDelay, Duration.millis(100)), 2)),
    Schedule.spaced(Duration.max(settings.maxRetryDelay, Duration.millis(100))),
  ])

export const makeProcessor = (plan: PipelinePlan, producer: ProducerShape, settings: ProcessorSettings) => {
  const schedule = stallSchedule(settings.pipeline)

  const untilDone = <A, E extends { readonly message: string }>(what: string, effect: Effect.Effect<A, E>) =>
    effect.pipe(
      Effect.tapError((e) =>
        Effect.logWarning(
          `stalled: ${what} keeps failing; retrying the same batch, offsets stay uncommitted`,
        ).pipe(Effect.annotateLogs({ error: e.message }), Effect.andThen(Metric.update(Metrics.stalled, 1))),
      ),
      Effect.retry(schedule),
      Effect.tap(() => Metric.update(Metrics.stalled, 0)),
      // The schedule never ends, so a failure here can only be a bug.
      Effect.orDie,
    )

  const recordTaskMetrics = (result: DagResult<Record<string, unknown>, StageError>) =>
    Effect.forEach(
      result.tasks,
      (t) => {
        const task = { task: t.name }
        return Effect.all([
          Metric.update(Metric.withAttributes(Metrics.taskDuration, task), t.durationMs / 1000),
          t.attempts > 1
            ? Metric.update(Metric.withAttributes(Metrics.taskRetries, task), t.attempts - 1)
            : Effect.void,
          t._tag === "Failed"
            ? Metric.update(Metric.withAttributes(Metrics.taskFailures, task), 1)
            : Effect.void,
          // The executor logs only failures; this line gives every task's time in the batch's logs.
          Effect.logDebug(`task ${t.name} ${t._tag.toLowerCase()} in ${t.durationMs} ms`).pipe(
            Effect.annotateLogs({
              task: t.name,
              outcome: t._tag,
              duration_ms: t.durationMs,
              attempts: t.attempts,
            }),
          ),
        ])
      },
      { discard: true },
    )

  const handle = (chunk: Chunk): Effect.Effect<BatchSummary> => {
    const correlationId = `${chunk.topic}-${chunk.partition}-${chunk.firstOffset}-${chunk.lastOffset}`
    return Effect.gen(function* () {
      const started = yield* Clock.currentTimeMillis
      const origin: BatchOrigin = {
        correlationId,
        topic: chunk.topic,
        partition: chunk.partition,
      }
      yield* Metric.modify(Metrics.batchesInFlight, 1)
      const parsed = parseMessages(chunk.messages, settings.maxMessageBytes)
      const byOffset = new Map(parsed.messages.map((m) => [m.offset, m]))
      const deadLetters: DeadLetter[] = parsed.malformed.map((m) => ({
        message: m.message,
        stage: "parse",
        reasons: [m.reason],
      }))
      const batch: Batch = { origin, records: parsed.records }
      const context = yield* PipelineContext.make({
        correlationId: origin.correlationId,
        source: {
          topic: chunk.topic,
          partition: chunk.partition,
          firstOffset: chunk.firstOffset,
          lastOffset: chunk.lastOffset,
        },
        payload: batch,
      })
      const result = yield* Executor.run(plan.dag, context, {
        maxWorkers: settings.pipeline.maxWorkers,
        retry: plan.retry,
      })
      yield* recordTaskMetrics(result)

      const written: Record<string, number> = {}
      let valid = 0
      let invalid = 0
      let duplicates = 0
      let rejectedBySink = 0
      let failedBatch = 0
      const failed = result.tasks.find(
        (t) => t._tag === "Failed" && !plan.sinks.some((s) => s.name === t.name),
      )
      if (failed !== undefined && failed._tag === "Failed") {
        // A transform failed for good (a bug, or a batch-level rule such as the quality threshold):
        // the whole batch goes to the dead-letter topic with that reason rather than blocking the partition.
        const reason: Reason = { task: failed.name, rule: "task_failed", message: failed.error.message }
        yield* Effect.logError(`task ${failed.name} failed; the batch goes to the dead-letter topic`).pipe(
          Effect.annotateLogs({ error: failed.error.message }),
        )
        for (const record of parsed.records) {
          deadLetters.push({ message: byOffset.get(record.offset)!, stage: "task", reasons: [reason] })
        }
        failedBatch = parsed.records.length
      } else {
        const records: ReadonlyArray<PipelineRecord> =
          plan.last === undefined
            ? parsed.records
            : (result.output(plan.last) as ReadonlyArray<PipelineRecord>)
        const outcomes = yield* Effect.forEach(
          plan.sinks,
          (sink) => {
            const r = result.result(sink.name)
            return r?._tag === "Succeeded"
              ? Effect.succeed({ name: sink.name, outcome: r.output as SinkOutcome })
              : untilDone(`the ${sink.name} sink`, sink.run(records, origin)).pipe(
                  Effect.map((outcome) => ({ name: sink.name, outcome })),
                )
          },
          { concurrency: "unbounded" },
        )
        const rejected = new Map<string, SinkRejection[]>()
        for (const { name, outcome } of outcomes) {
          written[name] = outcome.written
          for (const r of outcome.rejected) {
            const list = rejected.get(r.record.offset) ?? []
            list.push(r)
            rejected.set(r.record.offset, list)
          }
        }
        for (const record of records) {
          if (record.status === "invalid") {
            invalid++
            deadLetters.push({
              message: byOffset.get(record.offset)!,
              stage: "validation",
              reasons: record.reasons,
            })
          } else if (record.status === "duplicate") {
            duplicates++
          } else {
            const rejections = rejected.get(record.offset)
            if (rejections === undefined) {
              valid++
            } else {
              rejectedBySink++
              deadLetters.push({
                message: byOffset.get(record.offset)!,
                stage: "mongodb_sink",
                reasons: rejections.map((r) => r.reason),
              })
            }
          }
        }
      }

      const now = new Date(yield* Clock.currentTimeMillis)
      const dlqMessages: Message[] = deadLetters.map((d) =>
        deadLetterMessage(origin, d.message, d.stage, d.reasons, now),
      )
      yield* untilDone("the dead-letter topic", producer.send(settings.dlqTopic, dlqMessages))

      const summary: BatchSummary = {
        correlationId: origin.correlationId,
        consumed: chunk.messages.length,
        valid,
        invalid,
        malformed: parsed.malformed.length,
        duplicates,
        rejectedBySink,
        failedBatch,
        deadLettered: dlqMessages.length,
        written,
      }
      yield* recordBatchMetrics(summary, deadLetters, (yield* Clock.currentTimeMillis) - started)
      yield* Effect.logDebug("batch written").pipe(Effect.annotateLogs({ summary }))
      return summary
    }).pipe(
      Effect.ensuring(Metric.modify(Metrics.batchesInFlight, -1)),
      Effect.annotateLogs({
        correlation_id: correlationId,
        topic: chunk.topic,
        partition: chunk.partition,
        offsets: `${chunk.firstOffset}-${chunk.lastOffset}`,
      }),
      Effect.withSpan("Pipeline.batch"),
    )
  }

  return { handle }
}

const recordBatchMetrics = (
  summary: BatchSummary,
  deadLetters: ReadonlyArray<DeadLetter>,
  elapsedMs: number,
) =>
  Effect.gen(function* () {
    yield* Metric.update(Metrics.recordsConsumed, summary.consumed)
    yield* Metric.update(Metrics.recordsValid, summary.valid)
    yield* Metric.update(Metrics.recordsDuplicate, summary.duplicates)
    for (const [sink, n] of Object.entries(summary.written)) {
      yield* Metric.update(Metric.withAttributes(Metrics.recordsWritten, { sink }), n)
    }
    const byStage = new Map<string, number>()
    const byReason = new Map<string, number>()
    for (const d of deadLetters) {
      byStage.set(d.stage, (byStage.get(d.stage) ?? 0) + 1)
      const first = d.reasons[0]
      const reason = first === undefined ? "unknown" : `${first.task}/${first.rule}`
      byReason.set(reason, (byReason.get(reason) ?? 0) + 1)
    }
    for (const [stage, n] of byStage) {
      yield* Metric.update(Metric.withAttributes(Metrics.recordsDeadLettered, { stage }), n)
    }
    for (const [reason, n] of byReason) {
      yield* Metric.update(Metric.withAttributes(Metrics.recordsInvalid, { reason }), n)
    }
    yield* Metric.update(Metrics.batchDuration, elapsedMs / 1000)
    yield* Metric.update(Metrics.batchesProcessed, 1)
  })
