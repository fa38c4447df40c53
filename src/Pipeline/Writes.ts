/**
 * How a batch's writes are carried through failures, by the kind of each failure
 * (Domain/ErrorKind.ts):
 * - transient (a server away, an attempt slower than the sink's `timeoutSeconds`): the same
 *   write again with the service's backoff (Dag/Retry.ts), for as long as it lasts; the
 *   partition is stalled (WARNING per retry, per-partition gauge, /readyz after a while) and
 *   nothing is committed;
 * - unknown: tried again by the sink's retry settings, then treated as the records';
 * - record: the records are split in halves until the one that fails stands alone; it is
 *   rejected with the sink's stage and the error.
 * A throw inside a sink is a failure of the record kind (SinkDefect).
 */
import { Clock, Duration, Effect, type Schedule } from "effect"
import type { Message } from "kafkajs"
import type { AppSettings } from "../Config/AppConfig.js"
import { backoff, retryPolicy } from "../Dag/Retry.js"
import { type ErrorKind, kindOf } from "../Domain/ErrorKind.js"
import { BatchAbandoned } from "../Kafka/KafkaSource.js"
import type { ProducerShape } from "../Kafka/Producer.js"
import type { Rejection } from "./Classify.js"
import type { BatchOrigin } from "./Messages.js"
import type { Tombstone } from "./Parse.js"
import type { PlannedSink, StageError } from "./PipelineDag.js"
import type { Keyed, Sink, SinkOutcome } from "./Sinks.js"
import type { PartitionStalls } from "./Stalls.js"
import { type Failure, messageOf, SinkDefect, SinkTimeout } from "./WriteErrors.js"

/** A fenced failure ends the batch; any other is the caller's to handle. */
const abandonIfFenced = <A, R>(error: Failure, otherwise: Effect.Effect<A, BatchAbandoned, R>) =>
  kindOfFailure(error) === "fenced"
    ? Effect.fail(new BatchAbandoned({ reason: messageOf(error) }))
    : otherwise

const kindOfFailure = (error: unknown): ErrorKind => kindOf(error)

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

/** A sink's part of a batch: what it wrote and turned away, its attempts and its time. */
export interface SinkRun extends Settled {
  readonly attempts: number
  readonly durationMs: number
}

export const makeWrites = (options: {
  readonly pipeline: AppSettings["pipeline"]
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
  const dlqRetries = retryPolicy({
    retryCount: options.pipeline.retryCount,
    baseDelay: options.pipeline.retryDelay,
    maxDelay: options.pipeline.maxRetryDelay,
  })

  /**
   * Runs `write` until it succeeds or fails with an error that is not transient: a transient
   * failure stalls the partition and is retried without end; one of unknown kind is retried
   * by `unknownRetries` (none when it is undefined). Throws become failures of the record kind.
   * `attempts` counts every attempt.
   */
  const persist = <A>(
    what: string,
    scope: WriteScope,
    since: number,
    write: () => Effect.Effect<A, Failure>,
    unknownRetries: Schedule.Schedule<Duration.Duration, unknown> | undefined,
    attempts: { count: number } = { count: 0 },
  ): Effect.Effect<A, Failure> => {
    const once = Effect.suspend(() => {
      attempts.count++
      return write()
    }).pipe(Effect.catchDefect((defect) => Effect.fail(new SinkDefect({ sink: what, defect }))))
    const stalling = once.pipe(
      Effect.tapError((error) =>
        kindOfFailure(error) === "transient" ? noteStall(what, scope, since, error) : Effect.void,
      ),
      Effect.retry({ schedule: stallBackoff, while: (error) => kindOfFailure(error) === "transient" }),
    )
    return unknownRetries === undefined
      ? stalling
      : stalling.pipe(
          Effect.retry({ schedule: unknownRetries, while: (error) => kindOfFailure(error) === "unknown" }),
        )
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

  /** One attempt of the sink's write, bounded by its `timeoutSeconds`. */
  const attempt = (
    planned: PlannedSink,
    records: ReadonlyArray<Keyed>,
    scope: WriteScope,
    via: ProducerShape | undefined,
  ) => {
    const write = planned.sink.write(records, scope.origin, via)
    const timeout = planned.timeout
    return timeout === undefined
      ? () => write
      : () =>
          write.pipe(
            Effect.timeoutOrElse({
              duration: timeout,
              orElse: () => Effect.fail(new SinkTimeout({ sink: planned.sink.name, timeout })),
            }),
          )
  }

  /**
   * Writes `records` to the sink, isolating what the records cause: on a failure that is not
   * transient the records are split in halves, down to the one that fails alone, which is
   * rejected with the error. Never fails. Errors of unknown kind have had their retries on the
   * whole batch: the halves are not retried again for them (`unknownRetries` undefined).
   */
  const isolate = (
    planned: PlannedSink,
    records: ReadonlyArray<Keyed>,
    scope: WriteScope,
    since: number,
    unknownRetries: Schedule.Schedule<Duration.Duration, unknown> | undefined,
    attempts: { count: number },
    via?: ProducerShape,
  ): Effect.Effect<Settled, BatchAbandoned> =>
    persist(
      `the ${planned.sink.name} sink`,
      scope,
      since,
      attempt(planned, records, scope, via),
      unknownRetries,
      attempts,
    ).pipe(
      Effect.map((outcome) => fromOutcome(planned.sink, outcome)),
      Effect.catch((error) =>
        abandonIfFenced(error, split(planned, records, scope, since, error, attempts, via)),
      ),
    )

  const split = (
    planned: PlannedSink,
    records: ReadonlyArray<Keyed>,
    scope: WriteScope,
    since: number,
    error: Failure,
    attempts: { count: number },
    via?: ProducerShape,
  ): Effect.Effect<Settled, BatchAbandoned> => {
    const sink = planned.sink
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
      isolate(planned, left, scope, since, undefined, attempts, via),
      isolate(planned, right, scope, since, undefined, attempts, via),
      (a, b) => ({ written: a.written + b.written, rejected: [...a.rejected, ...b.rejected] }),
    )
  }

  /**
   * A sink's part of the batch: every record written, or turned away on its own. Fails only when
   * the batch is given up (BatchAbandoned). `via` is the producer a Kafka sink sends with (the
   * batch's transaction, with KAFKA__DELIVERY=exactly_once).
   */
  const writeSink = (
    planned: PlannedSink,
    records: ReadonlyArray<Keyed>,
    scope: WriteScope,
    via?: ProducerShape,
  ): Effect.Effect<SinkRun, BatchAbandoned> =>
    Effect.gen(function* () {
      const started = yield* Clock.currentTimeMillis
      const attempts = { count: 0 }
      const settled =
        records.length === 0
          ? { written: 0, rejected: [] }
          : yield* isolate(planned, records, scope, started, retryPolicy(planned.retry), attempts, via)
      return { ...settled, attempts: attempts.count, durationMs: (yield* Clock.currentTimeMillis) - started }
    })

  /**
   * Applies the batch's tombstones to a sink once its records are written (`written`): stalled
   * and retried while the failure is transient, a few retries when of unknown kind, and then the
   * batch is given up (read again, uncommitted): a tombstone is never dropped.
   */
  const removeFromSink = (
    planned: PlannedSink,
    tombstones: ReadonlyArray<Tombstone>,
    written: ReadonlyArray<Keyed>,
    scope: WriteScope,
    via?: ProducerShape,
  ): Effect.Effect<void, BatchAbandoned> => {
    const remove = planned.sink.remove
    if (remove === undefined || tombstones.length === 0) return Effect.void
    const timeout = planned.timeout
    const once = () => {
      const write = remove(tombstones, written, scope.origin, via)
      return timeout === undefined
        ? write
        : write.pipe(
            Effect.timeoutOrElse({
              duration: timeout,
              orElse: () => Effect.fail(new SinkTimeout({ sink: planned.sink.name, timeout })),
            }),
          )
    }
    return Effect.flatMap(Clock.currentTimeMillis, (since) =>
      retrying(`the ${planned.sink.name} sink's deletes`, scope, since, once),
    )
  }

  /**
   * Sends the dead letters (with `via`, the batch's transaction, or the service's producer). What
   * a message causes (too large, refused as a record) splits the send down to that message, which
   * goes as the pipeline's headers alone (the reasons and the source coordinates). Anything else
   * the topic answers after the retries (not authorised, the topic gone), or a message it refuses
   * even bare, stalls the partition until the topic takes them: a dead letter is never dropped,
   * so nothing is committed past a record that went nowhere. Fails only when the batch is given up.
   */
  const sendDeadLetters = (
    messages: ReadonlyArray<Message>,
    scope: WriteScope,
    since: number,
    via: ProducerShape = producer,
  ): Effect.Effect<void, BatchAbandoned> =>
    messages.length === 0
      ? Effect.void
      : persist(
          "the dead-letter topic",
          scope,
          since,
          () => via.send(options.dlqTopic, messages),
          dlqRetries,
        ).pipe(
          Effect.catch((error) => {
            if (kindOfFailure(error) === "fenced")
              return Effect.fail(new BatchAbandoned({ reason: messageOf(error) }))
            if (kindOfFailure(error) !== "record") return stallUntilTaken(messages, scope, since, via, error)
            if (messages.length > 1) {
              const [left, right] = halves(messages)
              return Effect.andThen(
                sendDeadLetters(left, scope, since, via),
                sendDeadLetters(right, scope, since, via),
              )
            }
            const only = messages[0]!
            const bare: Message = { key: null, value: null, headers: pipelineHeaders(only) }
            return only.value === null && only.key === null
              ? stallUntilTaken(messages, scope, since, via, error)
              : sendDeadLetters([bare], scope, since, via)
          }),
        )

  /**
   * The dead-letter topic refuses what it must take: an ERROR line (a person must act: grant the
   * writes, make the topic again), then the same send again with the stall's backoff, the
   * partition stalled and nothing committed, until it is taken or the batch is given up.
   */
  const stallUntilTaken = (
    messages: ReadonlyArray<Message>,
    scope: WriteScope,
    since: number,
    via: ProducerShape,
    first: Failure,
  ): Effect.Effect<void, BatchAbandoned> =>
    Effect.logError(
      "the dead-letter topic refuses the batch's dead letters; the partition stalls until it takes them (nothing is committed past them)",
    ).pipe(
      Effect.annotateLogs({ topic: options.dlqTopic, error: messageOf(first), messages: messages.length }),
      Effect.andThen(noteStall("the dead-letter topic", scope, since, first)),
      Effect.andThen(
        Effect.suspend(() => via.send(options.dlqTopic, messages)).pipe(
          Effect.catchDefect((defect) =>
            Effect.fail(new SinkDefect({ sink: "the dead-letter topic", defect })),
          ),
          Effect.tapError((error) =>
            kindOfFailure(error) === "fenced"
              ? Effect.void
              : noteStall("the dead-letter topic", scope, since, error),
          ),
          Effect.retry({ schedule: stallBackoff, while: (error) => kindOfFailure(error) !== "fenced" }),
          Effect.catch((error) => Effect.fail(new BatchAbandoned({ reason: messageOf(error) }))),
        ),
      ),
    )

  /**
   * An effect carried through failures like a write: stalled and retried while transient, a few
   * retries when of unknown kind; a fenced failure, or one that is neither after those, gives the
   * batch up (it is read again, uncommitted).
   */
  const retrying = <A>(
    what: string,
    scope: WriteScope,
    since: number,
    write: () => Effect.Effect<A, Failure | BatchAbandoned>,
  ): Effect.Effect<A, BatchAbandoned> =>
    persist(what, scope, since, write, dlqRetries).pipe(
      Effect.catch((error) =>
        Effect.fail(
          error instanceof BatchAbandoned
            ? error
            : new BatchAbandoned({ reason: `${what} failed (${kindOfFailure(error)}): ${messageOf(error)}` }),
        ),
      ),
    )

  return { writeSink, removeFromSink, sendDeadLetters, retrying }
}

const pipelineHeaders = (message: Message): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const [name, value] of Object.entries(message.headers ?? {})) {
    if (name.startsWith("pipeline.")) out[name] = String(value)
  }
  return out
}
