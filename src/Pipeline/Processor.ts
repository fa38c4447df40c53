/**
 * One batch, start to finish, in the order the data flows: parse the messages, run the DAG of
 * transforms, admit records to the sinks, then write the sinks and send the dead letters known
 * so far side by side, then the dead letters of records a sink turned away while writing, and
 * only then return (the source commits after that). Every message ends in exactly one place:
 * the sinks (valid), the dead-letter topic (malformed, invalid, refused or rejected by a sink,
 * or in a batch whose transform failed), the duplicate count, the filtered count (no sink's
 * branch carries it), or the tombstone counts (applied to the sinks, or ignored).
 *
 * How the batch reaches the sinks by delivery mode is Delivery.ts (AtLeastOnce.ts,
 * ExactlyOnce.ts); how the writes ride out failures (stall, retry, isolate the record) is
 * Writes.ts; where a record ends is Classify.ts; the order of the sinks' writes within a
 * partition is Lanes.ts. A
 * throw anywhere outside the sinks sends the batch's messages to the dead-letter topic (stage
 * `task`), so no batch can end a worker.
 */
import { Cause, Clock, Effect, Exit, Metric } from "effect"
import type { KafkaMessage } from "kafkajs"
import type { AppSettings } from "../Config/AppConfig.js"
import type { DagResult } from "../Dag/Executor.js"
import * as Executor from "../Dag/Executor.js"
import * as PipelineContext from "../Dag/PipelineContext.js"
import type { PipelineRecord, Reason, SourcePosition } from "../Domain/Record.js"
import { type Batch, BatchAbandoned } from "../Kafka/KafkaSource.js"
import type { ProducerShape } from "../Kafka/Producer.js"
import type { TransactionsShape } from "../Kafka/Transactions.js"
import type { WindowStore } from "../Mongo/SavedKeys.js"
import * as Metrics from "../Observability/Metrics.js"
import { atLeastOnce } from "./AtLeastOnce.js"
import type { BatchSummary, ParsedBatch } from "./Batch.js"
import { recordBatch, recordSinkRuns, recordTasks } from "./BatchMetrics.js"
import { type Classified, classify, type DeadLetter, type Rejection, type Versions } from "./Classify.js"
import { type Admitted, type Delivery, deliveryParts } from "./Delivery.js"
import { exactlyOnce } from "./ExactlyOnce.js"
import { WriteLanes } from "./Lanes.js"
import { type Parsed, type ParseOptions, parseMessages } from "./Parse.js"
import type { PipelinePlan, StageError } from "./PipelineDag.js"
import { PartitionStalls } from "./Stalls.js"
import { makeWindows, noteDeletes, noWindows, type WindowKeys, type Windows } from "./Windows.js"
import { makeWrites, type WriteScope } from "./Writes.js"

export interface ProcessorSettings {
  readonly pipeline: AppSettings["pipeline"]
  readonly maxMessageBytes: number
  readonly dlqTopic: string
  /** Where the duplicate checks' durable windows are kept, and the consumer group they belong to; none: in memory only. */
  readonly windows?: { readonly store: WindowStore; readonly group: string }
  /** Where a message was first read, when not where its batch came from (`replay`: a dead letter's original). */
  readonly sourceOf?: (message: KafkaMessage) => SourcePosition | undefined
  /** How values are read and what a null one does (PIPELINE__SOURCE_FORMAT, MONGODB__ON_TOMBSTONE); plain records, tombstones dead-lettered, when not given. */
  readonly parsing?: ParseOptions
}

/** Where every message of a batch ends, all of it written. */
interface Outcome extends Classified {
  /** Messages of the batch worked on (with exactly_once, those the partition's earlier owner committed are not). */
  readonly consumed: number
  readonly malformed: number
  readonly failedBatch: number
  readonly tombstonesApplied: number
  readonly tombstonesIgnored: number
  readonly written: Readonly<Record<string, number>>
}

type Result = DagResult<Record<string, unknown>, StageError>

const scopeOf = (batch: Batch): WriteScope => ({
  origin: {
    correlationId: `${batch.topic}-${batch.partition}-${batch.firstOffset}-${batch.lastOffset}`,
    topic: batch.topic,
    partition: batch.partition,
  },
  offsets: `${batch.firstOffset}-${batch.lastOffset}`,
})

const malformedLetters = (parsed: Parsed): ReadonlyArray<DeadLetter> =>
  parsed.malformed.map((m) => ({ message: m.message, stage: "parse", reasons: [m.reason] }))

/** The whole batch to the dead-letter topic (stage `task`), for one reason. */
const allFailed = (
  messages: ReadonlyArray<KafkaMessage>,
  reason: Reason,
  deadLetters: ReadonlyArray<DeadLetter> = [],
): Outcome => ({
  valid: 0,
  invalid: 0,
  duplicates: 0,
  filtered: 0,
  rejectedBySink: 0,
  malformed: 0,
  tombstonesApplied: 0,
  tombstonesIgnored: 0,
  consumed: messages.length,
  failedBatch: messages.length,
  written: {},
  deadLetters: [
    ...deadLetters,
    ...messages.map((message): DeadLetter => ({ message, stage: "task", reasons: [reason] })),
  ],
})

/** A batch that met a bug outside the sinks: all its messages to the dead-letter topic, an ERROR line. */
const metABug = (batch: Batch, cause: Cause.Cause<unknown>): Effect.Effect<Outcome> => {
  const error = Cause.squash(cause)
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error)
  return Effect.logError(
    "the batch failed with an unexpected error; it goes to the dead-letter topic",
    cause,
  ).pipe(Effect.as(allFailed(batch.messages, { task: "pipeline", rule: "batch_failed", message: text })))
}

const abandonedIn = (cause: Cause.Cause<unknown>): boolean =>
  cause.reasons.some((r) => Cause.isFailReason(r) && r.error instanceof BatchAbandoned)

/** What the steps of a batch share: the plan it began with, how it is delivered, the settings. */
interface Steps {
  readonly plan: PipelinePlan
  readonly delivery: Delivery
  readonly settings: ProcessorSettings
  readonly windows: Windows
}

/** The DAG over the batch's records: the transforms, then the sinks in parallel. */
const runDag = (steps: Steps, batch: Batch, input: ParsedBatch) =>
  PipelineContext.make<ParsedBatch>({
    correlationId: input.origin.correlationId,
    source: {
      topic: batch.topic,
      partition: batch.partition,
      firstOffset: batch.firstOffset,
      lastOffset: batch.lastOffset,
    },
    payload: input,
  }).pipe(
    Effect.flatMap((context) =>
      Executor.run(steps.plan.dag, context, {
        maxWorkers: steps.settings.pipeline.maxWorkers,
        retry: steps.plan.retry,
      }),
    ),
    Effect.tap(recordTasks),
  )

/** A transform that failed for good (a bug, or a batch-level rule such as the quality threshold). */
const failedTransform = (result: Result) => {
  const failed = result.tasks.find((t) => t._tag === "Failed")
  return failed?._tag === "Failed" ? failed : undefined
}

/** Rather than blocking the partition, a batch whose transform failed goes to the dead-letter topic with that reason. */
const transformFailed = (
  steps: Steps,
  batch: Batch,
  scope: WriteScope,
  parsed: Parsed,
  failed: NonNullable<ReturnType<typeof failedTransform>>,
) =>
  Effect.gen(function* () {
    yield* Effect.logError(`task ${failed.name} failed; the batch goes to the dead-letter topic`).pipe(
      Effect.annotateLogs({ error: failed.error.message }),
    )
    const reason: Reason = { task: failed.name, rule: "task_failed", message: failed.error.message }
    const malformed = malformedLetters(parsed)
    // The tombstones go with the records: the batch writes no sink.
    const outcome = {
      ...allFailed([...parsed.messages, ...parsed.tombstones.map((t) => t.message)], reason, malformed),
      malformed: malformed.length,
      tombstonesIgnored: parsed.ignored.length,
    }
    yield* steps.delivery.deadLettersOnly(batch, scope, outcome.deadLetters)
    return outcome
  })

/** What admission decided for the batch, and how to classify its records once the sinks have answered. */
const admit = (
  steps: Steps,
  batch: Batch,
  scope: WriteScope,
  parsed: Parsed,
  input: ParsedBatch,
  result: Result,
  windowKeys: ReadonlyArray<WindowKeys>,
): Admitted => {
  const { plan } = steps
  const outputs = (name: string) => result.output(name) as ReadonlyArray<PipelineRecord>
  const versions: Versions = {
    transforms: plan.transforms.map(outputs),
    sinks: plan.sinks.map((planned) => plan.inputOf(planned.sink.name, input, outputs)),
  }
  return {
    batch,
    scope,
    admission: plan.admit(input, outputs),
    classifyWith: (rejections: ReadonlyArray<Rejection>) =>
      classify(parsed.records, versions, rejections, (_, index) => parsed.messages[index]!),
    malformed: malformedLetters(parsed),
    tombstones: parsed.tombstones,
    windowKeys,
  }
}

/** Parse -> DAG -> admission -> delivery: where every message of the batch ends, all of it written. */
const outcomeOf = (steps: Steps, batch: Batch, scope: WriteScope): Effect.Effect<Outcome, BatchAbandoned> =>
  Effect.gen(function* () {
    const messages = yield* steps.delivery.unwritten(batch, scope)
    const parsed = parseMessages(
      messages,
      steps.settings.maxMessageBytes,
      steps.settings.sourceOf,
      steps.settings.parsing,
    )
    const input: ParsedBatch = { origin: scope.origin, records: parsed.records }
    yield* steps.windows.ready(batch, scope)
    // The batch's deletes are noted in the duplicate checks' windows now, and dropped once the DAG has run.
    const dropDeletes = noteDeletes(steps.plan.keyWindows, parsed.tombstones)
    const result = yield* runDag(steps, batch, input).pipe(Effect.ensuring(dropDeletes))
    const failed = failedTransform(result)
    if (failed !== undefined)
      return { ...(yield* transformFailed(steps, batch, scope, parsed, failed)), consumed: messages.length }
    const windowKeys = yield* steps.windows.keysOf(
      batch,
      (task) => result.output(task) as ReadonlyArray<PipelineRecord>,
      parsed.tombstones,
    )
    const admitted = admit(steps, batch, scope, parsed, input, result, windowKeys)
    const delivered = yield* steps.delivery.deliver(admitted)
    yield* recordSinkRuns(steps.plan.sinks, delivered.runs)
    return {
      ...delivered,
      consumed: messages.length,
      malformed: admitted.malformed.length,
      failedBatch: 0,
      tombstonesApplied: parsed.tombstones.length,
      tombstonesIgnored: parsed.ignored.length,
      deadLetters: [...admitted.malformed, ...delivered.deadLetters],
    }
  }).pipe(
    // A throw outside the sinks is a bug this batch met: it ends the batch, never the worker.
    Effect.catchCause((cause) =>
      Cause.hasInterrupts(cause) || abandonedIn(cause)
        ? Effect.failCause(cause)
        : metABug(batch, cause).pipe(
            Effect.tap((outcome) => steps.delivery.deadLettersOnly(batch, scope, outcome.deadLetters)),
          ),
    ),
  )

const summaryOf = (scope: WriteScope, outcome: Outcome): BatchSummary => ({
  correlationId: scope.origin.correlationId,
  consumed: outcome.consumed,
  valid: outcome.valid,
  invalid: outcome.invalid,
  malformed: outcome.malformed,
  duplicates: outcome.duplicates,
  filtered: outcome.filtered,
  rejectedBySink: outcome.rejectedBySink,
  failedBatch: outcome.failedBatch,
  tombstonesApplied: outcome.tombstonesApplied,
  tombstonesIgnored: outcome.tombstonesIgnored,
  deadLettered: outcome.deadLetters.length,
  written: outcome.written,
})

export const makeProcessor = (
  plan: PipelinePlan,
  producer: ProducerShape,
  settings: ProcessorSettings,
  stalls: PartitionStalls = new PartitionStalls(),
  // Shared by the processors of every plan a reload builds: the order holds across a reload.
  lanes: WriteLanes = new WriteLanes(),
  // With KAFKA__DELIVERY=exactly_once: each batch's Kafka writes and offset in one transaction.
  transactions?: TransactionsShape,
) => {
  const writes = makeWrites({ pipeline: settings.pipeline, producer, dlqTopic: settings.dlqTopic, stalls })
  const windows =
    settings.windows === undefined
      ? noWindows
      : makeWindows({
          windows: plan.windows,
          store: settings.windows.store,
          group: settings.windows.group,
          writes,
        })
  const parts = deliveryParts({ plan, writes, lanes, producer, dlqTopic: settings.dlqTopic, windows })
  const delivery = transactions === undefined ? atLeastOnce(parts) : exactlyOnce(parts, transactions)
  const steps: Steps = { plan, delivery, settings, windows }

  const handle = (batch: Batch): Effect.Effect<BatchSummary, BatchAbandoned> => {
    const scope = scopeOf(batch)
    let started = 0
    return Effect.gen(function* () {
      started = yield* Clock.currentTimeMillis
      stalls.batchStarted(batch.partition, started, scope.offsets)
      yield* Metric.modify(Metrics.batchesInFlight, 1)

      const outcome = yield* outcomeOf(steps, batch, scope)
      const summary = summaryOf(scope, outcome)
      yield* recordBatch(summary, outcome.deadLetters, (yield* Clock.currentTimeMillis) - started)
      yield* Effect.logDebug("batch written").pipe(Effect.annotateLogs({ summary }))
      return summary
    }).pipe(
      Effect.onExit((exit) =>
        Effect.suspend(() => {
          stalls.batchEnded(batch.partition, started, scope.offsets)
          return Effect.all([
            // Written: the turns it did not take pass in order. Given up: at once (nothing
            // after it is committed, so the rest is read and written again, in order).
            Exit.isSuccess(exit) ? lanes.releaseInTurn(batch) : lanes.release(batch),
            stalls.clear(batch.partition),
            Metric.modify(Metrics.batchesInFlight, -1),
          ])
        }),
      ),
      Effect.annotateLogs({
        correlation_id: scope.origin.correlationId,
        topic: batch.topic,
        partition: batch.partition,
        offsets: scope.offsets,
      }),
      Effect.withSpan("Pipeline.batch"),
    )
  }

  return { handle }
}
