/**
 * How a batch's writes are carried through failures, by the kind of each failure
 * (Domain/ErrorKind.ts):
 * - transient: the same write again with the service's backoff (Dag/Retry.ts), for as long as
 *   it lasts; the partition is stalled (WARNING per retry, per-partition gauge, /readyz after
 *   a while) and nothing is committed;
 * - record, or unknown after its retries: the records are split in halves until the one that
 *   fails stands alone; it is rejected with the sink's stage and the error.
 * A throw inside a sink is a failure of the record kind (SinkDefect).
 */
import { Data, Duration, Effect } from "effect"
import type { Message } from "kafkajs"
import type { AppSettings } from "../Config/AppConfig.js"
import type { TaskResult } from "../Dag/Executor.js"
import { backoff, type RetrySettings, retryPolicy } from "../Dag/Retry.js"
import { type ErrorKind, kindOf } from "../Domain/ErrorKind.js"
import type { BatchOrigin } from "../Kafka/Messages.js"
import type { ProducerShape } from "../Kafka/Producer.js"
import type { Rejection } from "./Classify.js"
import type { StageError } from "./PipelineDag.js"
import type { Keyed, Sink, SinkOutcome } from "./Sinks.js"
import type { PartitionStalls } from "./Stalls.js"

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

/** The kind of a sink's failure; the executor's own errors say theirs (a timeout is transient, a throw is the records'). */
const kindOfFailure = (error: unknown): ErrorKind => {
  if (typeof error === "object" && error !== null && "_tag" in error) {
    if (error._tag === "TaskTimeoutError") return "transient"
    if (error._tag === "TaskDefectError") return "record"
  }
  return kindOf(error)
}

export const messageOf = (error: unknown): string =>
  typeof error === "object" && error !== null && "message" in error && typeof error.message === "string"
    ? error.message
    : String(error)

const halves = <A>(items: ReadonlyArray<A>): readonly [ReadonlyArray<A>, ReadonlyArray<A>] => {
  const middle = items.length >> 1
  return [items.slice(0, middle), items.slice(middle)]
}

/** Where a batch's writes belong: for the stall records and the log lines. */
export interface WriteScope {
  readonly origin: BatchOrigin
  /** "first-last", as the logs and /readyz name a batch. */
  readonly offsets: string
}

/** What one sink wrote of a batch, and the records it turned away. */
export interface Settled {
  readonly written: number
  readonly rejected: ReadonlyArray<Rejection>
}

export const makeWrites = (options: {
  readonly pipeline: AppSettings["pipeline"]
  /** The plan's retry settings: how often a failure of unknown kind is tried again. */
  readonly retry: RetrySettings
  readonly producer: ProducerShape
  readonly dlqTopic: string
  readonly stalls: PartitionStalls
}) => {
  const { producer, stalls } = options
  // Never gives up while the failure is transient.
  const stallBackoff = backoff({
    baseDelay: Duration.max(options.pipeline.retryDelay, Duration.millis(100)),
    maxDelay: Duration.max(options.pipeline.maxRetryDelay, Duration.millis(100)),
  })
  const unknownRetries = retryPolicy(options.retry)

  /**
   * Runs `write` until it succeeds or fails with an error that is not transient: a transient
   * failure stalls the partition and is retried without end; one of unknown kind is retried
   * by the retry settings (`retryUnknown`). Throws become failures of the record kind.
   */
  const persist = <A>(
    what: string,
    scope: WriteScope,
    since: number,
    write: () => Effect.Effect<A, Failure>,
    retryUnknown = true,
  ): Effect.Effect<A, Failure> => {
    const once = Effect.suspend(write).pipe(
      Effect.catchDefect((defect) => Effect.fail(new SinkDefect({ sink: what, defect }))),
    )
    const stalling = once.pipe(
      Effect.tapError((error) =>
        kindOfFailure(error) === "transient" ? noteStall(what, scope, since, error) : Effect.void,
      ),
      Effect.retry({ schedule: stallBackoff, while: (error) => kindOfFailure(error) === "transient" }),
    )
    return retryUnknown
      ? stalling.pipe(
          Effect.retry({ schedule: unknownRetries, while: (error) => kindOfFailure(error) === "unknown" }),
        )
      : stalling
  }

  const noteStall = (what: string, scope: WriteScope, since: number, error: Failure) =>
    stalls
      .note({
        partition: scope.origin.partition,
        since,
        offsets: scope.offsets,
        what,
        error: messageOf(error),
      })
      .pipe(
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

  const fromOutcome = (sink: Sink<StageError>, outcome: SinkOutcome): Settled => ({
    written: outcome.written,
    rejected: outcome.rejected.map((r) => ({ record: r.record, stage: sink.stage, reason: r.reason })),
  })

  /**
   * Writes `records` to `sink`, isolating what the records cause: on a failure that is not
   * transient the records are split in halves, down to the one that fails alone, which is
   * rejected with the error. Never fails. Errors of unknown kind have had their retries on the
   * whole batch: the halves are not retried again for them (`retryUnknown`).
   */
  const isolate = (
    sink: Sink<StageError>,
    records: ReadonlyArray<Keyed>,
    scope: WriteScope,
    since: number,
    retryUnknown = false,
  ): Effect.Effect<Settled> =>
    persist(
      `the ${sink.name} sink`,
      scope,
      since,
      () => sink.write(records, scope.origin),
      retryUnknown,
    ).pipe(
      Effect.map((outcome) => fromOutcome(sink, outcome)),
      Effect.catch((error) => split(sink, records, scope, since, error)),
    )

  const split = (
    sink: Sink<StageError>,
    records: ReadonlyArray<Keyed>,
    scope: WriteScope,
    since: number,
    error: Failure,
  ): Effect.Effect<Settled> => {
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
    return Effect.zipWith(isolate(sink, left, scope, since), isolate(sink, right, scope, since), (a, b) => ({
      written: a.written + b.written,
      rejected: [...a.rejected, ...b.rejected],
    }))
  }

  /**
   * A sink's part of the batch, from what its DAG task did: its outcome when it succeeded;
   * otherwise the rest of the work. The DAG has retried the task already: a transient failure
   * goes on stalling, any other is split at once.
   */
  const settle = (
    sink: Sink<StageError>,
    result: TaskResult<StageError> | undefined,
    admitted: ReadonlyArray<Keyed>,
    scope: WriteScope,
    now: number,
  ): Effect.Effect<Settled> => {
    if (result?._tag === "Succeeded") return Effect.succeed(fromOutcome(sink, result.output as SinkOutcome))
    const since = now - (result?.durationMs ?? 0)
    const error = result?._tag === "Failed" ? result.error : undefined
    return error === undefined || kindOfFailure(error) === "transient"
      ? isolate(sink, admitted, scope, since, true)
      : split(sink, admitted, scope, since, error)
  }

  /**
   * Sends the dead letters; a message the topic will not take even cut to its size is sent as
   * headers alone, and if even that fails its coordinates are logged at ERROR. Never fails.
   */
  const sendDeadLetters = (
    messages: ReadonlyArray<Message>,
    scope: WriteScope,
    since: number,
  ): Effect.Effect<void> =>
    messages.length === 0
      ? Effect.void
      : persist("the dead-letter topic", scope, since, () => producer.send(options.dlqTopic, messages)).pipe(
          Effect.catch((error) => {
            if (messages.length > 1) {
              const [left, right] = halves(messages)
              return Effect.andThen(sendDeadLetters(left, scope, since), sendDeadLetters(right, scope, since))
            }
            const only = messages[0]!
            const bare: Message = { key: null, value: null, headers: only.headers ?? {} }
            return only.value === null
              ? Effect.logError(
                  "a dead letter could not be written; its source coordinates are in this line",
                ).pipe(Effect.annotateLogs({ error: messageOf(error), headers: pipelineHeaders(only) }))
              : sendDeadLetters([bare], scope, since)
          }),
        )

  return { settle, sendDeadLetters }
}

const pipelineHeaders = (message: Message): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const [name, value] of Object.entries(message.headers ?? {})) {
    if (name.startsWith("pipeline.")) out[name] = String(value)
  }
  return out
}
