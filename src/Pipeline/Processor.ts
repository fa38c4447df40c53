/**
 * One batch, start to finish, in the order the data flows: parse the messages, run the DAG of
 * transforms, admit records to the sinks, then write the sinks and send the dead letters known
 * so far side by side, then the dead letters of records a sink turned away while writing, and
 * only then return (the source commits after that). Every message ends in exactly one place:
 * the sinks (valid), the dead-letter topic (malformed, invalid, refused or rejected by a sink,
 * or in a batch whose transform failed), the duplicate count, or the filtered count (no sink's
 * branch carries it).
 *
 * How the writes ride out failures (stall, retry, isolate the record) is Writes.ts; where a
 * record ends is Classify.ts; the order of the sinks' writes within a partition is Lanes.ts. A
 * throw anywhere outside the sinks sends the batch's messages to the dead-letter topic (stage
 * `task`), so no batch can end a worker.
 */
import { Cause, Clock, Effect, Exit, Metric } from "effect"
import type { KafkaMessage } from "kafkajs"
import type { AppSettings } from "../Config/AppConfig.js"
import type { DagResult } from "../Dag/Executor.js"
import * as Executor from "../Dag/Executor.js"
import * as PipelineContext from "../Dag/PipelineContext.js"
import type { PipelineRecord, Reason } from "../Domain/Record.js"
import type { Chunk } from "../Kafka/KafkaSource.js"
import { deadLetterMessage } from "../Kafka/Messages.js"
import type { ProducerShape } from "../Kafka/Producer.js"
import type { TransactionsShape } from "../Kafka/Transactions.js"
import * as Metrics from "../Observability/Metrics.js"
import type { Admission } from "./Admission.js"
import type { Batch, BatchSummary } from "./Batch.js"
import { recordBatch, recordSinkRuns, recordTasks } from "./BatchMetrics.js"
import { type Classified, classify, type DeadLetter, type Rejection, type Versions } from "./Classify.js"
import { sinkStages, WriteLanes } from "./Lanes.js"
import { type Parsed, parseMessages } from "./Parse.js"
import type { PipelinePlan, StageError } from "./PipelineDag.js"
import type { SinkStage } from "./Sinks.js"
import { PartitionStalls } from "./Stalls.js"
import { BatchAbandoned, makeWrites, type SinkRun, type WriteScope } from "./Writes.js"

export interface ProcessorSettings {
  readonly pipeline: AppSettings["pipeline"]
  readonly maxMessageBytes: number
  readonly dlqTopic: string
}

/** Where every message of a batch ends, all of it written. */
interface Outcome extends Classified {
  /** Messages of the batch worked on (with exactly_once, those the partition's earlier owner committed are not). */
  readonly consumed: number
  readonly malformed: number
  readonly failedBatch: number
  readonly written: Readonly<Record<string, number>>
}

type Result = DagResult<Record<string, unknown>, StageError>

const scopeOf = (chunk: Chunk): WriteScope => ({
  origin: {
    correlationId: `${chunk.topic}-${chunk.partition}-${chunk.firstOffset}-${chunk.lastOffset}`,
    topic: chunk.topic,
    partition: chunk.partition,
  },
  offsets: `${chunk.firstOffset}-${chunk.lastOffset}`,
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
  consumed: messages.length,
  failedBatch: messages.length,
  written: {},
  deadLetters: [
    ...deadLetters,
    ...messages.map((message): DeadLetter => ({ message, stage: "task", reasons: [reason] })),
  ],
})

/** A batch that met a bug outside the sinks: all its messages to the dead-letter topic, an ERROR line. */
const metABug = (chunk: Chunk, cause: Cause.Cause<unknown>): Effect.Effect<Outcome> => {
  const error = Cause.squash(cause)
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error)
  return Effect.logError(
    "the batch failed with an unexpected error; it goes to the dead-letter topic",
    cause,
  ).pipe(Effect.as(allFailed(chunk.messages, { task: "pipeline", rule: "batch_failed", message: text })))
}

/** The messages at or after `committed` (an offset the group has committed; -1 for none). */
export const keepFrom = (
  messages: ReadonlyArray<KafkaMessage>,
  committed: bigint,
): ReadonlyArray<KafkaMessage> =>
  committed < 0n ? messages : messages.filter((m) => BigInt(m.offset) >= committed)

const abandonedIn = (cause: Cause.Cause<unknown>): boolean =>
  cause.reasons.some((r) => Cause.isFailReason(r) && r.error instanceof BatchAbandoned)

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
  const writes = makeWrites({
    pipeline: settings.pipeline,
    producer,
    dlqTopic: settings.dlqTopic,
    stalls,
  })

  /**
   * Every sink of a kind, all in the chunk's one turn on the kind's lane (the next chunk waits
   * for all of them); each sink's run goes into `runs` at its index in plan.sinks.
   */
  const writeKindInTurn = (
    chunk: Chunk,
    stage: SinkStage,
    scope: WriteScope,
    admission: Admission,
    runs: Array<SinkRun>,
  ) =>
    lanes.inTurn(
      chunk,
      stage,
      Effect.forEach(
        plan.sinks.flatMap((planned, i) => (planned.sink.stage === stage ? [i] : [])),
        (i) => {
          const planned = plan.sinks[i]!
          const records = admission.admitted.get(planned.sink.name) ?? []
          return Effect.map(writes.writeSink(planned, records, scope), (run) => {
            runs[i] = run
          })
        },
        { concurrency: "unbounded", discard: true },
      ),
    )

  /** The DAG over the batch's records: the transforms, then the sinks in parallel. */
  const run = (chunk: Chunk, batch: Batch) =>
    PipelineContext.make<Batch>({
      correlationId: batch.origin.correlationId,
      source: {
        topic: chunk.topic,
        partition: chunk.partition,
        firstOffset: chunk.firstOffset,
        lastOffset: chunk.lastOffset,
      },
      payload: batch,
    }).pipe(
      Effect.flatMap((context) =>
        Executor.run(plan.dag, context, { maxWorkers: settings.pipeline.maxWorkers, retry: plan.retry }),
      ),
      Effect.tap(recordTasks),
    )

  /** A transform that failed for good (a bug, or a batch-level rule such as the quality threshold). */
  const failedTransform = (result: Result) => {
    const failed = result.tasks.find((t) => t._tag === "Failed")
    return failed?._tag === "Failed" ? failed : undefined
  }

  /** The dead letters as messages for the topic, each cut to what it takes, and sent (`via` a transaction). */
  const sendDeadLetters = (deadLetters: ReadonlyArray<DeadLetter>, scope: WriteScope, via?: ProducerShape) =>
    Effect.gen(function* () {
      if (deadLetters.length === 0) return
      const now = yield* Clock.currentTimeMillis
      const limit = producer.maxMessageBytes(settings.dlqTopic) - 1024
      const messages = deadLetters.map((d) =>
        deadLetterMessage(scope.origin, d.message, d.stage, d.reasons, new Date(now), limit),
      )
      yield* writes.sendDeadLetters(messages, scope, now, via)
    })

  /**
   * The Kafka side of a batch with exactly_once: `work` sends through the partition's
   * transaction, then the batch's next offset goes in and the transaction commits, in the
   * batch's turn on the sink topic's lane; retried as a whole while the failure is transient.
   */
  const inTransaction = <A>(
    tx: TransactionsShape,
    chunk: Chunk,
    scope: WriteScope,
    work: (via: ProducerShape) => Effect.Effect<A, BatchAbandoned>,
  ): Effect.Effect<A, BatchAbandoned> =>
    Effect.gen(function* () {
      const since = yield* Clock.currentTimeMillis
      const next = (BigInt(chunk.lastOffset) + 1n).toString()
      return yield* writes.retrying("the Kafka transaction", scope, since, () =>
        tx.transact(chunk.partition, next, work),
      )
    }).pipe((effect) => lanes.inTurn(chunk, "kafka_sink", effect))

  /**
   * exactly_once: MongoDB first, in its turn; then one transaction with the sink messages, every
   * dead letter and the offset. A crash between the two leaves MongoDB written and the
   * transaction never committed: the batch is read again, MongoDB rewritten with the same
   * documents, and read_committed readers never see the aborted messages.
   */
  const writeAllOnce = (
    tx: TransactionsShape,
    chunk: Chunk,
    scope: WriteScope,
    admission: Admission,
    classifyWith: (rejections: ReadonlyArray<Rejection>) => Classified,
    malformed: ReadonlyArray<DeadLetter>,
  ) =>
    Effect.gen(function* () {
      const admitted = (i: number) => admission.admitted.get(plan.sinks[i]!.sink.name) ?? []
      const runs: Array<SinkRun> = new Array(plan.sinks.length)
      yield* writeKindInTurn(chunk, "mongodb_sink", scope, admission, runs)
      const final = yield* inTransaction(tx, chunk, scope, (via) =>
        Effect.gen(function* () {
          for (const [i, planned] of plan.sinks.entries()) {
            if (planned.sink.stage === "kafka_sink")
              runs[i] = yield* writes.writeSink(planned, admitted(i), scope, via)
          }
          const classified = classifyWith([...admission.refused, ...runs.flatMap((r) => r.rejected)])
          yield* sendDeadLetters([...malformed, ...classified.deadLetters], scope, via)
          return classified
        }),
      )
      yield* recordSinkRuns(plan.sinks, runs)
      const written = Object.fromEntries(
        plan.sinks.map((planned, i) => [planned.sink.name, runs[i]!.written]),
      )
      return { ...final, written }
    })

  /**
   * The sinks, each in its turn on its lane, beside the dead letters known before writing;
   * then the dead letters of the records a sink turned away while writing.
   */
  const writeAll = (
    chunk: Chunk,
    scope: WriteScope,
    admission: Admission,
    classifyWith: (rejections: ReadonlyArray<Rejection>) => Classified,
    malformed: ReadonlyArray<DeadLetter>,
  ) =>
    Effect.gen(function* () {
      const early = classifyWith(admission.refused)
      const runs: Array<SinkRun> = new Array(plan.sinks.length)
      yield* Effect.all(
        [
          sendDeadLetters([...malformed, ...early.deadLetters], scope),
          ...sinkStages.map((stage) => writeKindInTurn(chunk, stage, scope, admission, runs)),
        ],
        { concurrency: "unbounded", discard: true },
      )
      yield* recordSinkRuns(plan.sinks, runs)
      const written = Object.fromEntries(
        plan.sinks.map((planned, i) => [planned.sink.name, runs[i]!.written]),
      )
      const rejectedWhileWriting = runs.flatMap((r) => r.rejected)
      if (rejectedWhileWriting.length === 0) return { ...early, written }
      const final = classifyWith([...admission.refused, ...rejectedWhileWriting])
      const late = new Set(rejectedWhileWriting.map((r) => r.record.offset))
      yield* sendDeadLetters(
        final.deadLetters.filter((d) => late.has(d.message.offset)),
        scope,
      )
      return { ...final, written }
    })

  /** Parse -> DAG -> sinks and dead letters: where every message of the chunk ends, all of it written. */
  const outcomeOf = (chunk: Chunk, scope: WriteScope): Effect.Effect<Outcome, BatchAbandoned> =>
    Effect.gen(function* () {
      const messages =
        transactions === undefined ? chunk.messages : yield* unwritten(transactions, chunk, scope)
      const parsed = parseMessages(messages, settings.maxMessageBytes)
      const malformed = malformedLetters(parsed)
      const batch: Batch = { origin: scope.origin, records: parsed.records }
      const result = yield* run(chunk, batch)

      const failed = failedTransform(result)
      if (failed !== undefined) {
        // Rather than blocking the partition, the batch goes to the dead-letter topic with that reason.
        yield* Effect.logError(`task ${failed.name} failed; the batch goes to the dead-letter topic`).pipe(
          Effect.annotateLogs({ error: failed.error.message }),
        )
        const reason: Reason = { task: failed.name, rule: "task_failed", message: failed.error.message }
        const outcome = { ...allFailed(parsed.messages, reason, malformed), malformed: malformed.length }
        yield* deadLettersOnly(chunk, scope, outcome.deadLetters)
        return { ...outcome, consumed: messages.length }
      }

      const outputs = (name: string) => result.output(name) as ReadonlyArray<PipelineRecord>
      const admission = plan.admit(batch, outputs)
      const versions: Versions = {
        transforms: plan.transforms.map(outputs),
        sinks: plan.sinks.map((planned) => plan.inputOf(planned.sink.name, batch, outputs)),
      }
      const sources = new Map(parsed.records.map((r, i) => [r.offset, parsed.messages[i]!]))
      const classifyWith = (rejections: ReadonlyArray<Rejection>) =>
        classify(parsed.records, versions, rejections, (record) => sources.get(record.offset)!)
      const classified =
        transactions === undefined
          ? yield* writeAll(chunk, scope, admission, classifyWith, malformed)
          : yield* writeAllOnce(transactions, chunk, scope, admission, classifyWith, malformed)
      return {
        ...classified,
        consumed: messages.length,
        malformed: malformed.length,
        failedBatch: 0,
        deadLetters: [...malformed, ...classified.deadLetters],
      }
    }).pipe(
      // A throw outside the sinks is a bug this batch met: it ends the batch, never the worker.
      Effect.catchCause((cause) =>
        Cause.hasInterrupts(cause) || abandonedIn(cause)
          ? Effect.failCause(cause)
          : metABug(chunk, cause).pipe(
              Effect.tap((outcome) => deadLettersOnly(chunk, scope, outcome.deadLetters)),
            ),
      ),
    )

  /**
   * A batch that writes no sink (a transform failed, or a bug): its turns passed on, its dead
   * letters sent (with exactly_once, with its offset in one transaction).
   */
  const deadLettersOnly = (chunk: Chunk, scope: WriteScope, deadLetters: ReadonlyArray<DeadLetter>) =>
    transactions === undefined
      ? // Its turns are passed on when the batch ends (handle).
        sendDeadLetters(deadLetters, scope)
      : Effect.andThen(
          lanes.inTurn(chunk, "mongodb_sink", Effect.void),
          inTransaction(transactions, chunk, scope, (via) => sendDeadLetters(deadLetters, scope, via)),
        )

  /**
   * exactly_once: the batch's messages the partition's earlier owner has not committed. Once
   * this instance's producer for the partition has fenced the earlier ones, the group's offset is
   * final: what lies below it was written, in a committed transaction, by that owner.
   */
  const unwritten = (tx: TransactionsShape, chunk: Chunk, scope: WriteScope) =>
    Effect.gen(function* () {
      const since = yield* Clock.currentTimeMillis
      const committed = yield* writes.retrying(
        `the producer of partition ${chunk.partition}`,
        scope,
        since,
        () => tx.fence(chunk.partition),
      )
      return keepFrom(chunk.messages, committed)
    })

  const handle = (chunk: Chunk): Effect.Effect<BatchSummary, BatchAbandoned> => {
    const scope = scopeOf(chunk)
    let started = 0
    return Effect.gen(function* () {
      started = yield* Clock.currentTimeMillis
      stalls.batchStarted(chunk.partition, started, scope.offsets)
      yield* Metric.modify(Metrics.batchesInFlight, 1)

      const outcome = yield* outcomeOf(chunk, scope)
      const summary: BatchSummary = {
        correlationId: scope.origin.correlationId,
        consumed: outcome.consumed,
        valid: outcome.valid,
        invalid: outcome.invalid,
        malformed: outcome.malformed,
        duplicates: outcome.duplicates,
        filtered: outcome.filtered,
        rejectedBySink: outcome.rejectedBySink,
        failedBatch: outcome.failedBatch,
        deadLettered: outcome.deadLetters.length,
        written: outcome.written,
      }
      yield* recordBatch(summary, outcome.deadLetters, (yield* Clock.currentTimeMillis) - started)
      yield* Effect.logDebug("batch written").pipe(Effect.annotateLogs({ summary }))
      return summary
    }).pipe(
      Effect.onExit((exit) =>
        Effect.suspend(() => {
          stalls.batchEnded(chunk.partition, started, scope.offsets)
          return Effect.all([
            // Written: the turns it did not take pass in order. Given up: at once (nothing
            // after it is committed, so the rest is read and written again, in order).
            Exit.isSuccess(exit) ? lanes.releaseInTurn(chunk) : lanes.release(chunk),
            stalls.clear(chunk.partition),
            Metric.modify(Metrics.batchesInFlight, -1),
          ])
        }),
      ),
      Effect.annotateLogs({
        correlation_id: scope.origin.correlationId,
        topic: chunk.topic,
        partition: chunk.partition,
        offsets: scope.offsets,
      }),
      Effect.withSpan("Pipeline.batch"),
    )
  }

  return { handle }
}
