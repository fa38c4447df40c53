/**
 * The Kafka source: a kafkajs consumer group whose callbacks do no work themselves.
 *
 * `eachBatch` cuts the fetched batch into batches of PIPELINE__BATCH_SIZE messages (and at most
 * their share of PIPELINE__MAX_IN_FLIGHT_BYTES), hands up to PIPELINE__BATCHES_IN_FLIGHT of
 * them at a time, each with a Deferred, to a bounded Queue, and waits for them in offset order;
 * worker fibers owned by the caller's scope take batches, process them, and complete the
 * Deferred only once everything is written. The callback commits `last + 1` of the longest run
 * of finished batches, at most every KAFKA__COMMIT_INTERVAL_SECONDS and always before it returns.
 * The bounded queue and the bytes budget are the backpressure: while the pipeline is slow or
 * stalled, kafkajs stops fetching. A batch gives its bytes back as soon as it is done, so a
 * partition waiting for bytes never waits on itself. Offsets are never committed past a batch
 * that was abandoned, nor for a partition that moved to another instance (stale).
 *
 * What a fetch holds is bounded too: KAFKA__FETCH_MAX_BYTES for the response, and per partition
 * KAFKA__FETCH_MAX_BYTES_PER_PARTITION of messages as decoded (the rest waits for the next
 * fetch). A record batch that cannot be decoded (a codec the client lacks, corrupt bytes) stops
 * its partition at that offset: the messages before it are handled, the failure is handed over
 * (`undecodable`), and the same offset is fetched again after the wait it returns.
 *
 * When the group says this instance is no longer a member (UNKNOWN_MEMBER_ID, a rebalance it
 * missed), the callback stops handing batches, lets those in hand finish, and throws kafkajs' own
 * error, so that kafkajs rejoins the group; until a commit succeeds again, `commitFailure` says why.
 *
 * Shutdown (closing the scope) stops fetching, lets the batches in hand finish within the
 * shutdown timeout, abandons them uncommitted after that, and disconnects within a bound.
 */
import {
  Cause,
  Context,
  Data,
  Deferred,
  Duration,
  Effect,
  Exit,
  Fiber,
  Layer,
  Option,
  Queue,
  type Scope,
  Semaphore,
} from "effect"
import type { Consumer, EachBatchPayload, KafkaMessage } from "kafkajs"
import type { ErrorKind } from "../Domain/ErrorKind.js"
import { describeCause, KafkaConnectionError } from "./Errors.js"
import { KafkaClient } from "./KafkaClient.js"
import { decodeFailureOf, limitDecodedBytesPerPartition } from "./KafkajsPatch.js"

/** Up to PIPELINE__BATCH_SIZE messages of one partition, in offset order: the unit of work. */
export interface Batch {
  readonly topic: string
  readonly partition: number
  readonly messages: ReadonlyArray<KafkaMessage>
  readonly firstOffset: string
  readonly lastOffset: string
  /** The partition's high watermark when the batch was fetched (for lag). */
  readonly highWatermark: string
  /**
   * 1, 2, 3, ... for the batches of this partition in the order they are handed over, which is
   * offset order, for the life of the process.
   */
  readonly sequence: number
  /** The first batch of its fetch: every batch of the partition's previous fetch was settled before it. */
  readonly startsFetch: boolean
  /** How many times this instance had joined its group when the batch was fetched (1 after the first join). */
  readonly generation: number
}

/**
 * The batch is given up before it was fully written (its producer was fenced: the partition moved;
 * or it was interrupted): nothing after it is committed, and whoever owns the partition reads it
 * again. Not retried, and no record to blame.
 */
export class BatchAbandoned extends Data.TaggedError("BatchAbandoned")<{ readonly reason: string }> {
  readonly kind: ErrorKind = "fenced"
  readonly retryable = false
  override get message() {
    return `the batch is given up uncommitted: ${this.reason}`
  }
}

/** Where the source reads, and how much it may hold in flight. */
export interface SourceOptions {
  readonly brokers: ReadonlyArray<string>
  readonly topic: string
  readonly group: string
  /** Where a group without a committed offset starts. */
  readonly fromBeginning: boolean
  readonly sessionTimeout: Duration.Duration
  /** At most this long between offset commits of a partition while it is being read. */
  readonly commitInterval: Duration.Duration
  /** False when each batch's offset is committed elsewhere (in a transaction with its writes). */
  readonly commitOffsets: boolean
  readonly fetchMaxBytes: number
  readonly fetchMaxBytesPerPartition: number
  readonly batchSize: number
  /** Batches of one partition handled at once. */
  readonly batchesInFlight: number
  /** Partitions handled at once. */
  readonly partitionsConcurrency: number
  /** Message bytes all batches in flight may hold. */
  readonly maxInFlightBytes: number
  /** How long a stop waits for the batches in flight. */
  readonly shutdownTimeout: Duration.Duration
}

export class KafkaConsumerCrashed extends Data.TaggedError("KafkaConsumerCrashed")<{
  readonly cause: unknown
}> {
  readonly retryable = false
  override get message() {
    return `the Kafka consumer stopped after an error it could not recover from: ${describeCause(this.cause)}`
  }
}

/** A record batch of a partition that cannot be decoded: the partition goes no further. */
export interface Undecodable {
  readonly topic: string
  readonly partition: number
  /** The first offset of the record batch that cannot be decoded. */
  readonly offset: string
  readonly reason: string
}

/** Why offsets cannot be committed now, since when (Unix ms). */
export interface CommitFailure {
  readonly since: number
  readonly error: string
}

interface Work {
  readonly batch: Batch
  readonly done: Deferred.Deferred<void, BatchAbandoned>
  /** The batch's share of the bytes budget, given back when it is done. */
  readonly bytes: number
}

/** The group's word that this instance is not (or no longer) a member of the generation it commits for. */
const membershipErrorTypes = new Set([
  "UNKNOWN_MEMBER_ID",
  "ILLEGAL_GENERATION",
  "REBALANCE_IN_PROGRESS",
  "NOT_COORDINATOR_FOR_GROUP",
  "FENCED_INSTANCE_ID",
])

/** A kafkajs error that kafkajs must see, as it is, to rejoin the group. */
export const isMembershipError = (error: unknown): boolean =>
  typeof error === "object" &&
  error !== null &&
  "type" in error &&
  typeof error.type === "string" &&
  membershipErrorTypes.has(error.type)

/** How long a disconnect may take at shutdown before it is left behind. */
const disconnectTimeout = Duration.seconds(10)

export interface SourceShape {
  /**
   * Starts consuming: every batch goes through `handle`, with at most PIPELINE__BATCHES_IN_FLIGHT
   * batches of each of PIPELINE__PARTITIONS_CONCURRENCY partitions in flight. Consumption stops
   * when the scope closes.
   */
  readonly consume: <E>(
    handle: (batch: Batch) => Effect.Effect<void, E>,
    /** Told of a record batch that cannot be decoded; answers how long to wait before fetching it again. */
    undecodable: (batch: Undecodable) => Effect.Effect<Duration.Duration>,
  ) => Effect.Effect<void, KafkaConnectionError, Scope.Scope>
  /** Fails when the consumer has stopped for good (kafkajs gave up restarting it). */
  readonly crashed: Effect.Effect<never, KafkaConsumerCrashed>
  /** True while the consumer is a member of its group. */
  readonly joined: Effect.Effect<boolean>
  /** The source topic's partitions in this member's assignment (empty while not in the group). */
  readonly assigned: Effect.Effect<ReadonlyArray<number>>
  /** Why this instance cannot commit offsets now (it lost its group membership), or none. */
  readonly commitFailure: Effect.Effect<Option.Option<CommitFailure>>
  /** Offsets committed by this instance, per partition (for lag). */
  readonly committed: Effect.Effect<
    ReadonlyMap<number, { offset: string; highWatermark: string; at: number }>
  >
}

const nextOffset = (offset: string) => (BigInt(offset) + 1n).toString()

/** What a message holds in memory: its value and key. */
const bytesOfMessage = (m: KafkaMessage): number => (m.value?.length ?? 0) + (m.key?.length ?? 0)

const bytesOf = (messages: ReadonlyArray<KafkaMessage>): number => {
  let n = 0
  for (const m of messages) n += bytesOfMessage(m)
  return n
}

/**
 * The messages cut into runs of at most `size` messages and `maxBytes` bytes (a message larger
 * than that runs alone), in order.
 */
export const batchesOf = (
  messages: ReadonlyArray<KafkaMessage>,
  size: number,
  maxBytes = Number.POSITIVE_INFINITY,
): ReadonlyArray<ReadonlyArray<KafkaMessage>> => {
  const out: KafkaMessage[][] = []
  let current: KafkaMessage[] = []
  let bytes = 0
  for (const message of messages) {
    const n = bytesOfMessage(message)
    if (current.length > 0 && (current.length >= size || bytes + n > maxBytes)) {
      out.push(current)
      current = []
      bytes = 0
    }
    current.push(message)
    bytes += n
  }
  if (current.length > 0) out.push(current)
  return out
}

export class KafkaSource extends Context.Service<KafkaSource, SourceShape>()("pipeline/KafkaSource") {
  static readonly layer = <R>(options: Effect.Effect<SourceOptions, never, R>) =>
    Layer.effect(KafkaSource, Effect.flatMap(options, make))
}

const make = (options: SourceOptions) =>
  Effect.gen(function* () {
    const client = yield* KafkaClient
    const brokers = options.brokers.join(",")
    const crash = yield* Deferred.make<never, KafkaConsumerCrashed>()
    let joined = false
    let assigned: ReadonlyArray<number> = []
    let commitFailure: CommitFailure | undefined
    // The sequence number of the last batch handed over, per partition.
    const sequences = new Map<number, number>()
    let joins = 0
    const committed = new Map<number, { offset: string; highWatermark: string; at: number }>()

    const consumer: Consumer = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: async () => {
          const c = client.consumer({
            groupId: options.group,
            sessionTimeout: Duration.toMillis(options.sessionTimeout),
            rebalanceTimeout: 60_000,
            heartbeatInterval: Math.min(3_000, Duration.toMillis(options.sessionTimeout) / 3),
            // The batches of one fetch are processed several at a time, and each fetch ends with a
            // commit and a pause until its last batch is written; what it holds is bounded.
            maxBytesPerPartition: options.fetchMaxBytesPerPartition,
            maxBytes: options.fetchMaxBytes,
            // A short fetch long-poll: stop() waits one out, so this bounds the shutdown (5 s by default).
            maxWaitTimeInMs: 500,
            allowAutoTopicCreation: false,
          })
          limitDecodedBytesPerPartition(options.fetchMaxBytesPerPartition)
          c.on(c.events.GROUP_JOIN, (e) => {
            joins++
            joined = true
            commitFailure = undefined
            assigned = [...(e.payload.memberAssignment[options.topic] ?? [])].sort((a, b) => a - b)
          })
          for (const event of [c.events.STOP, c.events.DISCONNECT]) {
            c.on(event, () => {
              joined = false
              assigned = []
            })
          }
          c.on(c.events.CRASH, (e) => {
            joined = false
            assigned = []
            if (!e.payload.restart)
              Deferred.doneUnsafe(crash, Exit.fail(new KafkaConsumerCrashed({ cause: e.payload.error })))
          })
          await c.connect()
          await c.subscribe({
            topics: [options.topic],
            fromBeginning: options.fromBeginning,
          })
          return c
        },
        catch: (cause) => new KafkaConnectionError({ client: "consumer", brokers, cause }),
      }),
      (c) =>
        Effect.promise(() => c.disconnect().catch(() => undefined)).pipe(
          Effect.timeoutOption(disconnectTimeout),
          Effect.tap((done) =>
            Option.isNone(done)
              ? Effect.logWarning(
                  `the Kafka consumer did not disconnect within ${Duration.format(disconnectTimeout)}; left behind`,
                )
              : Effect.void,
          ),
        ),
    )

    const consume = <E>(
      handle: (batch: Batch) => Effect.Effect<void, E>,
      undecodable: (batch: Undecodable) => Effect.Effect<Duration.Duration>,
    ) =>
      Effect.gen(function* () {
        const depth = options.batchesInFlight
        const workerCount = options.partitionsConcurrency * depth
        const queue = yield* Queue.bounded<Work>(workerCount)
        // The message bytes held by batches in flight, across partitions.
        const bytesBudget = options.maxInFlightBytes
        const bytes = yield* Semaphore.make(bytesBudget)
        // A batch's share of the budget, so that every worker can hold one.
        const batchBytes = Math.max(1, Math.floor(bytesBudget / workerCount))
        const context = yield* Effect.context<never>()
        const run = Effect.runPromiseWith(context)
        const commitEvery = Duration.toMillis(options.commitInterval)

        // A worker completes the batch's Deferred whatever happens (done when handled,
        // abandoned when interrupted), so the callback waiting for it always wakes up.
        // Its bytes go back to the budget at the same time: never later than the batch is done.
        const worker = Effect.uninterruptibleMask((restore) =>
          Effect.flatMap(restore(Queue.take(queue)), (work) =>
            restore(handle(work.batch)).pipe(
              Effect.onExit((exit) =>
                Semaphore.release(bytes, work.bytes).pipe(
                  Effect.andThen(
                    Deferred.done(
                      work.done,
                      Exit.isSuccess(exit)
                        ? Exit.void
                        : Exit.fail(new BatchAbandoned({ reason: Cause.pretty(exit.cause) })),
                    ),
                  ),
                ),
              ),
            ),
          ),
        ).pipe(
          // The batch is settled above whatever happened; a failure of one batch never ends a worker.
          Effect.catchCause((cause) =>
            Cause.hasInterruptsOnly(cause)
              ? Effect.failCause(cause)
              : Cause.hasFails(cause) && !Cause.hasDies(cause)
                ? // The handler's own word that it gave the batch up (a fenced producer: the partition moved).
                  Effect.logWarning("a batch was given up uncommitted; it will be read again", cause)
                : Effect.logError("a batch ended with an unexpected error; it is not committed", cause),
          ),
          Effect.forever,
        )
        const workers = yield* Effect.forEach(
          Array.from({ length: workerCount }, () => worker),
          (w) => Effect.forkScoped(w),
        )

        /** Waits `ms`, in short steps, unless the consumer stops or the partition moves meanwhile. */
        const pause = async (ms: number, payload: EachBatchPayload) => {
          const until = Date.now() + ms
          while (Date.now() < until && payload.isRunning() && !payload.isStale())
            await new Promise((wake) => setTimeout(wake, Math.min(250, until - Date.now())))
        }

        /**
         * One fetch of one partition: its batches go to the workers up to `depth` at a time, and
         * the offset after the longest run of finished batches is committed at most every
         * KAFKA__COMMIT_INTERVAL_SECONDS and always before the callback returns (so before
         * the partition's next fetch, a rebalance or a stop). Nothing is committed past a batch
         * that was abandoned, nor for a partition that moved to another instance.
         */
        const eachBatch = async (payload: EachBatchPayload): Promise<void> => {
          const fetched = payload.batch
          // The group generation it was fetched in, and whether a batch of it was handed over yet.
          const generation = joins
          let first = true
          const inFlight: Array<{ batch: Batch; done: Deferred.Deferred<void, BatchAbandoned> }> = []
          let finished: string | undefined
          let abandoned = false
          let lastCommit = Date.now()
          // The group's word, from a heartbeat, that this instance must rejoin it.
          let membershipLost: unknown

          const commit = async () => {
            if (finished === undefined || payload.isStale()) return
            const last = finished
            finished = undefined
            payload.resolveOffset(last)
            const offset = nextOffset(last)
            if (!options.commitOffsets) {
              // Committed already, elsewhere (in each batch's transaction with its writes).
              committed.set(fetched.partition, {
                offset,
                highWatermark: fetched.highWatermark,
                at: Date.now(),
              })
              return
            }
            try {
              await payload.commitOffsetsIfNecessary({
                topics: [{ topic: fetched.topic, partitions: [{ partition: fetched.partition, offset }] }],
              })
            } catch (cause) {
              if (isMembershipError(cause)) return rejoin(cause)
              commitFailure ??= { since: Date.now(), error: describeCause(cause) }
              throw cause
            }
            commitFailure = undefined
            lastCommit = Date.now()
            committed.set(fetched.partition, { offset, highWatermark: fetched.highWatermark, at: lastCommit })
          }
          /** The group no longer counts this instance as a member: said once, then kafkajs rejoins. */
          const rejoin = async (cause: unknown): Promise<never> => {
            commitFailure ??= { since: Date.now(), error: describeCause(cause) }
            await run(
              Effect.logWarning(
                "the consumer group no longer counts this instance as a member; rejoining it (batches written since the last commit will be read again)",
              ).pipe(
                Effect.annotateLogs({
                  topic: fetched.topic,
                  partition: fetched.partition,
                  error: describeCause(cause),
                }),
              ),
            )
            // kafkajs rejoins the group only when it sees its own error as it is.
            throw cause
          }
          /** Waits for the oldest batch in flight; a finished one moves the commit point. */
          const settleOldest = async () => {
            const oldest = inFlight.shift()!
            const outcome = await run(Effect.exit(Deferred.await(oldest.done)))
            if (Exit.isFailure(outcome)) abandoned = true
            else if (!abandoned) finished = oldest.batch.lastOffset
          }

          // Heartbeats keep the membership alive while batches wait in the queue or stall.
          const beat = setInterval(
            () =>
              payload.heartbeat().catch((cause: unknown) => {
                if (isMembershipError(cause)) membershipLost ??= cause
              }),
            Math.min(3_000, Duration.toMillis(options.sessionTimeout) / 3),
          )
          try {
            for (const messages of batchesOf(fetched.messages, options.batchSize, batchBytes)) {
              if (abandoned || membershipLost !== undefined || !payload.isRunning() || payload.isStale())
                break
              const batch: Batch = {
                topic: fetched.topic,
                partition: fetched.partition,
                messages,
                firstOffset: messages[0]!.offset,
                lastOffset: messages[messages.length - 1]!.offset,
                highWatermark: fetched.highWatermark,
                sequence: (sequences.get(fetched.partition) ?? 0) + 1,
                startsFetch: first,
                generation,
              }
              sequences.set(fetched.partition, batch.sequence)
              first = false
              // A batch larger than the whole budget takes all of it, alone.
              const size = Math.min(bytesBudget, bytesOf(messages))
              await run(Semaphore.take(bytes, size))
              const done = Deferred.makeUnsafe<void, BatchAbandoned>()
              inFlight.push({ batch, done })
              await run(Queue.offer(queue, { batch, done, bytes: size }))
              while (inFlight.length >= depth) await settleOldest()
              if (Date.now() - lastCommit >= commitEvery) await commit()
            }
            while (inFlight.length > 0) await settleOldest()
            await commit()
            if (membershipLost !== undefined) await rejoin(membershipLost)
            const failure = decodeFailureOf(fetched)
            if (failure !== undefined && !abandoned && payload.isRunning() && !payload.isStale()) {
              const wait = await run(
                undecodable({
                  topic: fetched.topic,
                  partition: fetched.partition,
                  offset: failure.offset,
                  reason: describeCause(failure.error),
                }),
              )
              // Returning without resolving the offset: the next fetch starts at the same batch.
              await pause(Duration.toMillis(wait), payload)
            }
          } finally {
            clearInterval(beat)
            // After a throw: the batches still in flight settle.
            while (inFlight.length > 0) await settleOldest().catch(() => undefined)
          }
          await payload.heartbeat().catch(() => undefined)
        }

        yield* Effect.tryPromise({
          try: () =>
            consumer.run({
              autoCommit: false,
              eachBatchAutoResolve: false,
              partitionsConsumedConcurrently: options.partitionsConcurrency,
              eachBatch,
            }),
          catch: (cause) => new KafkaConnectionError({ client: "consumer", brokers, cause }),
        })

        // Runs before the workers are interrupted (finalizers run in reverse order).
        yield* Effect.addFinalizer(() =>
          Effect.gen(function* () {
            yield* Effect.logInfo("stopping the consumer: no new batches, finishing the ones in flight")
            const stopped = yield* Effect.promise(() => consumer.stop()).pipe(
              Effect.timeoutOption(options.shutdownTimeout),
            )
            if (Option.isNone(stopped)) {
              yield* Effect.logWarning(
                `batches still in flight after ${Duration.format(options.shutdownTimeout)}: abandoning them uncommitted (they will be read again)`,
              )
              yield* Fiber.interruptAll(workers)
              yield* Effect.promise(() => consumer.stop()).pipe(Effect.timeoutOption(disconnectTimeout))
            }
          }),
        )
      })

    return KafkaSource.of({
      consume,
      crashed: Deferred.await(crash),
      joined: Effect.sync(() => joined),
      assigned: Effect.sync(() => assigned),
      commitFailure: Effect.sync(() => Option.fromNullishOr(commitFailure)),
      committed: Effect.sync(() => new Map(committed)),
    })
  })
