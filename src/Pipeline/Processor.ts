/**
 * One batch, start to finish, in the order the data flows: parse the messages, run the DAG,
 * settle the sinks, classify every record, send the dead letters, and only then return (the
 * source commits after that). Every message ends in exactly one place: the sinks (valid), the
 * dead-letter topic (malformed, invalid, refused or rejected by a sink, or in a batch whose
 * transform failed), or the duplicate count.
 *
 * Settling a sink follows the kind of its failure (Domain/ErrorKind.ts):
 * - transient: the same records again with a capped backoff, for as long as it lasts; the
 *   partition is stalled (WARNING per retry, per-partition gauge, /readyz after a while) and
 *   nothing is committed;
 * - record, or unknown after its retries: the records are split in halves until the one that
 *   fails stands alone; it goes to the dead-letter topic with the sink's stage and the error.
 * A throw in a sink is a failure of the record kind; a throw anywhere else in the batch sends
 * the batch's messages to the dead-letter topic (stage `task`), so no batch can end a worker.
 */
import { Cause, Clock, Data, Duration, Effect, Metric, Schedule } from "effect"
import type { KafkaMessage, Message } from "kafkajs"
import type { AppSettings } from "../Config/AppConfig.js"
import type { DagResult, TaskResult } from "../Dag/Executor.js"
import * as Executor from "../Dag/Executor.js"
import * as PipelineContext from "../Dag/PipelineContext.js"
import { retryPolicy } from "../Dag/Retry.js"
import { type ErrorKind, kindOf } from "../Domain/ErrorKind.js"
import type { PipelineRecord, Reason } from "../Domain/Record.js"
import type { Chunk } from "../Kafka/KafkaSource.js"
import { type BatchOrigin, deadLetterMessage, type Stage } from "../Kafka/Messages.js"
import type { ProducerShape } from "../Kafka/Producer.js"
import * as Metrics from "../Observability/Metrics.js"
import type { Batch } from "./Batch.js"
import { parseMessages } from "./Parse.js"
import type { PipelinePlan, StageError } from "./PipelineDag.js"
import type { Keyed, Sink, SinkOutcome, SinkStage } from "./Sinks.js"
import { PartitionStalls } from "./Stalls.js"

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

export interface DeadLetter {
  readonly message: KafkaMessage
  readonly stage: Stage
  readonly reasons: ReadonlyArray<Reason>
}

/** A throw inside a sink: the records it was given caused it (an encoder's stack overflow, a bug). */
export class SinkDefect extends Data.TaggedError("SinkDefect")<{
  readonly sink: string
  readonly defect: unknown
}> {
  readonly kind: ErrorKind = "record"
  readonly retryable = false
  override get message() {
    const d = this.defect
    return `the ${this.sink} sink threw: ${d instanceof Error ? `${d.name}: ${d.message}` : String(d)}`
  }
}

type Failure = StageError | SinkDefect

/** A record a sink turned away (a limit before writing, or the server while writing). */
export interface Rejection {
  readonly record: PipelineRecord
  readonly stage: SinkStage
  readonly reason: Reason
}

export interface Classified {
  readonly valid: number
  readonly invalid: number
  readonly duplicates: number
  readonly rejectedBySink: number
  readonly deadLetters: ReadonlyArray<DeadLetter>
}

/**
 * Where each record of a batch that went through every transform ends: invalid records and
 * those a sink refused or rejected go to the dead-letter topic (with the stage of the first
 * sink that turned them away and every reason), duplicates are counted, the rest are valid.
 */
export const classify = (
  records: ReadonlyArray<PipelineRecord>,
  rejections: ReadonlyArray<Rejection>,
  sourceOf: (record: PipelineRecord) => KafkaMessage,
): Classified => {
  const byOffset = new Map<string, Rejection[]>()
  for (const r of rejections) {
    const list = byOffset.get(r.record.offset)
    if (list === undefined) byOffset.set(r.record.offset, [r])
    else list.push(r)
  }
  const deadLetters: DeadLetter[] = []
  let valid = 0
  let invalid = 0
  let duplicates = 0
  let rejectedBySink = 0
  for (const record of records) {
    if (record.status === "invalid") {
      invalid++
      deadLetters.push({ message: sourceOf(record), stage: "validation", reasons: record.reasons })
    } else if (record.status === "duplicate") {
      duplicates++
    } else {
      const turnedAway = byOffset.get(record.offset)
      if (turnedAway === undefined) {
        valid++
      } else {
        rejectedBySink++
        deadLetters.push({
          message: sourceOf(record),
          stage: turnedAway[0]!.stage,
          reasons: turnedAway.map((r) => r.reason),
        })
      }
    }
  }
  return { valid, invalid, duplicates, rejectedBySink, deadLetters }
}

/** The kind of a sink's failure; the executor's own errors say theirs (a timeout is transient, a throw is the records'). */
const kindOfFailure = (error: unknown): ErrorKind => {
  if (typeof error === "object" && error !== null && "_tag" in error) {
    if (error._tag === "TaskTimeoutError") return "transient"
    if (error._tag === "TaskDefectError") return "record"
  }
  return kindOf(error)
}

const messageOf = (error: unknown): string =>
  typeof error === "object" && error !== null && "message" in error && typeof error.message === "string"
    ? error.message
    : String(error)

const halves = <A>(items: ReadonlyArray<A>): readonly [ReadonlyArray<A>, ReadonlyArray<A>] => {
  const middle = items.length >> 1
  return [items.slice(0, middle), items.slice(middle)]
}

export const makeProcessor = (
  plan: PipelinePlan,
  producer: ProducerShape,
  settings: ProcessorSettings,
  stalls: PartitionStalls = new PartitionStalls(),
) => {
  // Backs off like every retry in the service, but never gives up while the failure is transient.
  const stallSchedule = Schedule.min([
    Schedule.jittered(
      Schedule.exponential(Duration.max(settings.pipeline.retryDelay, Duration.millis(100)), 2),
    ),
    Schedule.spaced(Duration.max(settings.pipeline.maxRetryDelay, Duration.millis(100))),
  ])
  const unknownRetries = retryPolicy(plan.retry)

  /**
   * Runs `write` until it succeeds or fails with an error that is not transient: a transient
   * failure stalls the partition and is retried without end; one of unknown kind is retried
   * by the retry settings. Throws become failures of the record kind.
   */
  const persist = <A>(
    what: string,
    origin: BatchOrigin,
    offsets: string,
    since: number,
    write: () => Effect.Effect<A, Failure>,
    retryUnknown = true,
  ): Effect.Effect<A, Failure> => {
    const once = Effect.suspend(write).pipe(
      Effect.catchDefect((defect) => Effect.fail(new SinkDefect({ sink: what, defect }))),
    )
    const stalling = once.pipe(
      Effect.tapError((error) =>
        kindOfFailure(error) === "transient"
          ? stalls.note({ partition: origin.partition, since, offsets, what, error: messageOf(error) }).pipe(
              Effect.flatMap((stall) =>
                Effect.logWarning(
                  `stalled: ${what} keeps failing; retrying the same batch, offsets stay uncommitted`,
                ).pipe(
                  Effect.annotateLogs({
                    error: messageOf(error),
                    stalled_seconds: Math.round((Date.now() - stall.since) / 1000),
                    retries: stall.retries,
                  }),
                ),
              ),
            )
          : Effect.void,
      ),
      Effect.retry({ schedule: stallSchedule, while: (error) => kindOfFailure(error) === "transient" }),
    )
    return retryUnknown
      ? stalling.pipe(
          Effect.retry({ schedule: unknownRetries, while: (error) => kindOfFailure(error) === "unknown" }),
        )
      : stalling
  }

  /**
   * Writes `records` to `sink`, isolating what the records cause: on a failure that is not
   * transient the records are split in halves, down to the one that fails alone, which is
   * rejected with the error. Never fails. Errors of unknown kind have had their retries on the
   * whole batch: the halves are not retried again for them (`retryUnknown`).
   */
  const isolate = (
    sink: Sink<StageError>,
    records: ReadonlyArray<Keyed>,
    origin: BatchOrigin,
    offsets: string,
    since: number,
    retryUnknown = false,
  ): Effect.Effect<{ readonly written: number; readonly rejected: ReadonlyArray<Rejection> }> =>
    persist(
      `the ${sink.name} sink`,
      origin,
      offsets,
      since,
      () => sink.write(records, origin),
      retryUnknown,
    ).pipe(
      Effect.map((outcome) => fromOutcome(sink, outcome)),
      Effect.catch((error) => split(sink, records, origin, offsets, since, error)),
    )

  const split = (
    sink: Sink<StageError>,
    records: ReadonlyArray<Keyed>,
    origin: BatchOrigin,
    offsets: string,
    since: number,
    error: Failure,
  ): Effect.Effect<{ readonly written: number; readonly rejected: ReadonlyArray<Rejection> }> => {
    if (records.length === 0) return Effect.succeed({ written: 0, rejected: [] })
    if (records.length === 1) {
      const rejection: Rejection = {
        record: records[0]!.record,
        stage: sink.stage,
        reason: { task: sink.name, rule: `${kindOfFailure(error)}_error`, message: messageOf(error) },
      }
      return Effect.logWarning(
        `the ${sink.name} sink cannot take a record; it goes to the dead-letter topic`,
      ).pipe(
        Effect.annotateLogs({ error: messageOf(error), offset: rejection.record.offset }),
        Effect.as({ written: 0, rejected: [rejection] }),
      )
    }
    const [left, right] = halves(records)
    return Effect.zipWith(
      isolate(sink, left, origin, offsets, since),
      isolate(sink, right, origin, offsets, since),
      (a, b) => ({ written: a.written + b.written, rejected: [...a.rejected, ...b.rejected] }),
    )
  }

  const fromOutcome = (sink: Sink<StageError>, outcome: SinkOutcome) => ({
    written: outcome.written,
    rejected: outcome.rejected.map((r) => ({ record: r.record, stage: sink.stage, reason: r.reason })),
  })

  /** A sink's part of the batch: what the DAG did, and what is left to do after a failure. */
  const settle = (
    sink: Sink<StageError>,
    result: TaskResult<StageError> | undefined,
    admitted: ReadonlyArray<Keyed>,
    origin: BatchOrigin,
    offsets: string,
    now: number,
  ) => {
    if (result?._tag === "Succeeded") return Effect.succeed(fromOutcome(sink, result.output as SinkOutcome))
    const since = now - (result?.durationMs ?? 0)
    const error = result?._tag === "Failed" ? result.error : undefined
    // The DAG has retried it already: a transient failure goes on stalling, any other is split at once.
    return error === undefined || kindOfFailure(error) === "transient"
      ? isolate(sink, admitted, origin, offsets, since, true)
      : split(sink, admitted, origin, offsets, since, error)
  }

  /**
   * Sends the dead letters; a message the topic will not take even cut to its size is sent as
   * headers alone, and if even that fails its coordinates are logged at ERROR.
   */
  const sendDeadLetters = (
    messages: ReadonlyArray<Message>,
    origin: BatchOrigin,
    offsets: string,
    since: number,
  ): Effect.Effect<void> =>
    messages.length === 0
      ? Effect.void
      : persist("the dead-letter topic", origin, offsets, since, () =>
          producer.send(settings.dlqTopic, messages),
        ).pipe(
          Effect.catch((error) => {
            if (messages.length > 1) {
              const [left, right] = halves(messages)
              return Effect.andThen(
                sendDeadLetters(left, origin, offsets, since),
                sendDeadLetters(right, origin, offsets, since),
              )
            }
            const only = messages[0]!
            const bare: Message = { key: null, value: null, headers: only.headers ?? {} }
            return only.value === null
              ? Effect.logError(
                  "a dead letter could not be written; its source coordinates are in this line",
                ).pipe(Effect.annotateLogs({ error: messageOf(error), headers: headerText(only) }))
              : sendDeadLetters([bare], origin, offsets, since)
          }),
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

  /** Parse -> DAG -> sinks -> classification; the dead letters are left for the caller to send. */
  const process = (chunk: Chunk, origin: BatchOrigin, offsets: string) =>
    Effect.gen(function* () {
      const parsed = parseMessages(chunk.messages, settings.maxMessageBytes)
      const sources = new Map(parsed.records.map((r, i) => [r.offset, parsed.messages[i]!]))
      const sourceOf = (record: PipelineRecord) => sources.get(record.offset)!
      const malformed: DeadLetter[] = parsed.malformed.map((m) => ({
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
        return {
          parsed,
          malformed: malformed.length,
          failedBatch: parsed.records.length,
          classified: {
            valid: 0,
            invalid: 0,
            duplicates: 0,
            rejectedBySink: 0,
            deadLetters: [
              ...malformed,
              ...parsed.records.map(
                (r): DeadLetter => ({ message: sourceOf(r), stage: "task", reasons: [reason] }),
              ),
            ],
          },
          written: {},
        }
      }

      const records: ReadonlyArray<PipelineRecord> =
        plan.last === undefined ? parsed.records : (result.output(plan.last) as ReadonlyArray<PipelineRecord>)
      const admission = plan.admit(records, origin)
      const now = yield* Clock.currentTimeMillis
      const settled = yield* Effect.forEach(
        plan.sinks,
        (sink) => settle(sink, result.result(sink.name), admission.admitted, origin, offsets, now),
        { concurrency: "unbounded" },
      )
      const written: Record<string, number> = {}
      plan.sinks.forEach((sink, i) => {
        written[sink.name] = settled[i]!.written
      })
      const rejections: ReadonlyArray<Rejection> = [
        ...admission.refused,
        ...settled.flatMap((s) => s.rejected),
      ]
      const classified = classify(records, rejections, sourceOf)
      return {
        parsed,
        malformed: malformed.length,
        failedBatch: 0,
        classified: { ...classified, deadLetters: [...malformed, ...classified.deadLetters] },
        written,
      }
    })

  const handle = (chunk: Chunk): Effect.Effect<BatchSummary> => {
    const correlationId = `${chunk.topic}-${chunk.partition}-${chunk.firstOffset}-${chunk.lastOffset}`
    const origin: BatchOrigin = { correlationId, topic: chunk.topic, partition: chunk.partition }
    const offsets = `${chunk.firstOffset}-${chunk.lastOffset}`
    let started = 0
    return Effect.gen(function* () {
      started = yield* Clock.currentTimeMillis
      stalls.batchStarted(chunk.partition, started)
      yield* Metric.modify(Metrics.batchesInFlight, 1)
      const outcome = yield* process(chunk, origin, offsets).pipe(
        // A throw outside the sinks is a bug this batch met: it ends the batch, never the worker.
        Effect.catchCause((cause) =>
          Cause.hasInterrupts(cause)
            ? Effect.failCause(cause as Cause.Cause<never>)
            : batchFailed(chunk, cause).pipe(
                Effect.map((deadLetters) => ({
                  parsed: undefined,
                  malformed: 0,
                  failedBatch: chunk.messages.length,
                  classified: { valid: 0, invalid: 0, duplicates: 0, rejectedBySink: 0, deadLetters },
                  written: {},
                })),
              ),
        ),
      )
      const now = new Date(yield* Clock.currentTimeMillis)
      const dlqLimit = producer.maxMessageBytes(settings.dlqTopic)
      const { deadLetters } = outcome.classified
      const dlqMessages = deadLetters.map((d) =>
        deadLetterMessage(origin, d.message, d.stage, d.reasons, now, dlqLimit - 1024),
      )
      yield* sendDeadLetters(dlqMessages, origin, offsets, now.getTime())

      const summary: BatchSummary = {
        correlationId,
        consumed: chunk.messages.length,
        valid: outcome.classified.valid,
        invalid: outcome.classified.invalid,
        malformed: outcome.malformed,
        duplicates: outcome.classified.duplicates,
        rejectedBySink: outcome.classified.rejectedBySink,
        failedBatch: outcome.failedBatch,
        deadLettered: dlqMessages.length,
        written: outcome.written,
      }
      yield* recordBatchMetrics(summary, deadLetters, (yield* Clock.currentTimeMillis) - started)
      yield* Effect.logDebug("batch written").pipe(Effect.annotateLogs({ summary }))
      return summary
    }).pipe(
      Effect.ensuring(
        Effect.suspend(() => {
          stalls.batchEnded(chunk.partition, started)
          return Effect.andThen(stalls.clear(chunk.partition), Metric.modify(Metrics.batchesInFlight, -1))
        }),
      ),
      Effect.annotateLogs({
        correlation_id: correlationId,
        topic: chunk.topic,
        partition: chunk.partition,
        offsets,
      }),
      Effect.withSpan("Pipeline.batch"),
    )
  }

  return { handle }
}

/** Every message of a batch that met a bug, for the dead-letter topic (stage `task`). */
const batchFailed = (chunk: Chunk, cause: Cause.Cause<unknown>): Effect.Effect<ReadonlyArray<DeadLetter>> => {
  const error = Cause.squash(cause)
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error)
  const reason: Reason = { task: "pipeline", rule: "batch_failed", message: text }
  return Effect.logError(
    "the batch failed with an unexpected error; it goes to the dead-letter topic",
    cause,
  ).pipe(
    Effect.as(chunk.messages.map((message): DeadLetter => ({ message, stage: "task", reasons: [reason] }))),
  )
}

const headerText = (message: Message): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const [name, value] of Object.entries(message.headers ?? {})) {
    if (name.startsWith("pipeline.")) out[name] = String(value)
  }
  return out
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
