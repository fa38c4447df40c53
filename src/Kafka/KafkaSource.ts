/**
 * The Kafka source: a kafkajs consumer group whose callbacks do no work themselves.
 *
 * `eachBatch` cuts the fetched batch into batches of PIPELINE__BATCH_SIZE messages (and at most
 * their share of PIPELINE__MAX_IN_FLIGHT_BYTES) and hands each, with a Deferred, to a bounded
 * Queue; worker fibers owned by the caller's scope take batches, process them, and complete the
 * Deferred only once everything is written. A partition has at most PIPELINE__BATCHES_IN_FLIGHT
 * batches in flight: the callback waits for room, and returns once the fetch's last batch is
 * handed over, so the partition's next fetch overlaps the writes of this one (the writes still go
 * in offset order: Pipeline/Lanes.ts). The bounded queue, the batches in flight and the bytes
 * budget are the backpressure: while the pipeline is slow or stalled, kafkajs stops fetching. A
 * batch gives its bytes back as soon as it is done.
 *
 * Each partition's batches in hand form its lane (for the group generation they were fetched
 * in). As batches settle, the lane commits `last + 1` of the longest run of written batches, at
 * most every KAFKA__COMMIT_INTERVAL_SECONDS (the first at once), one commit at a time. Before a
 * rebalance (kafkajs patched to wait for it), and at a stop, the batches in hand settle and what
 * they finished is committed while this instance is still a member. Offsets are never committed
 * past a batch that was given up: the lane's batches settle, what was written before it is
 * committed, and the partition is read again from there. A lane of an earlier generation never
 * commits, and its batches settle before the partition's next batch is handed over.
 *
 * What a fetch holds is bounded too: KAFKA__FETCH_MAX_BYTES for the response, and per partition
 * KAFKA__FETCH_MAX_BYTES_PER_PARTITION of messages as decoded (the rest waits for the next
 * fetch). A record batch that cannot be decoded (a codec the client lacks, corrupt bytes) stops
 * its partition at that offset: the messages before it are handed over, the failure is handed
 * over (`undecodable`), and the same offset is fetched again after the wait it returns.
 *
 * When the group says this instance is no longer a member (UNKNOWN_MEMBER_ID, a rebalance it
 * missed), the next callback hands nothing and throws kafkajs' own error, so that kafkajs
 * rejoins the group; until a commit succeeds again, `commitFailure` says why.
 *
 * Shutdown (closing the scope) hands nothing more, lets the batches in hand finish within the
 * shutdown timeout and commits them, abandons them uncommitted after that, and stops the
 * consumer and disconnects within a bound.
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
import type { Consumer, ConsumerRunConfig, EachBatchPayload, KafkaMessage } from "kafkajs"
import type { ErrorKind } from "../Domain/ErrorKind.js"
import { describeCause, KafkaConnectionError } from "./Errors.js"
import { KafkaClient } from "./KafkaClient.js"
import { decodeFailureOf, limitDecodedBytesPerPartition, requireRejoinHook } from "./KafkajsPatch.js"

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
  /** No batch of its partition handed over before it was still in flight when it was handed over. */
  readonly afterSettled: boolean
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
  /** The broker answers a fetch once it has this many bytes for it ... */
  readonly fetchMinBytes: number
  /** ... or once this long has passed. */
  readonly fetchMaxWait: Duration.Duration
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

/** A batch handed over, until it settles. */
interface InFlight {
  readonly batch: Batch
  readonly done: Deferred.Deferred<void, BatchAbandoned>
  /** Set when the batch settles: whether it was written, or given up. */
  written: boolean | undefined
}

/** One partition's batches in hand, across its fetches, for the group generation they were fetched in. */
interface Lane {
  readonly topic: string
  readonly partition: number
  readonly generation: number
  /** Handed over and not settled yet, in offset order. */
  readonly inFlight: Array<InFlight>
  /** The last offset of the longest run of written batches, while it is not committed. */
  finished: string | undefined
  /** Where the partition is read again from if a batch is given up: after the last written batch. */
  readFrom: string | undefined
  /** A batch was given up: nothing after it is committed, and the partition is read again from `readFrom`. */
  abandoned: boolean
  /** When the next commit may go (Unix ms). */
  notBefore: number
  committing: Promise<void> | undefined
  timer: ReturnType<typeof setTimeout> | undefined
  /** The partition's latest fetch as kafkajs hands it: its commit, heartbeat and state. */
  payload: EachBatchPayload
  highWatermark: string
}

interface Work {
  readonly entry: InFlight
  readonly lane: Lane
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

/** How long a rebalance waits for the batches in hand: half the rebalance timeout the group gives a member. */
const rebalanceTimeout = 60_000
const rebalanceDrainTimeout = rebalanceTimeout / 2

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
    yield* Effect.sync(requireRejoinHook)
    const client = yield* KafkaClient
    const brokers = options.brokers.join(",")
    // kafkajs' heartbeats between fetches, and the callback's while it waits for room in flight.
    const heartbeatEvery = Math.min(3_000, Duration.toMillis(options.sessionTimeout) / 3)
    const crash = yield* Deferred.make<never, KafkaConsumerCrashed>()
    let joined = false
    let assigned: ReadonlyArray<number> = []
    let commitFailure: CommitFailure | undefined
    // The group's word (from a commit or a heartbeat) that this instance must rejoin it.
    let membershipLost: unknown
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
            rebalanceTimeout,
            heartbeatInterval: heartbeatEvery,
            // A fetch's batches are handed over with at most PIPELINE__BATCHES_IN_FLIGHT of the
            // partition in flight; what a fetch holds is bounded.
            maxBytesPerPartition: options.fetchMaxBytesPerPartition,
            maxBytes: options.fetchMaxBytes,
            // The broker answers a fetch once it has this much, or after this wait: under a light
            // load a fetch gathers a few milliseconds of records instead of one or two.
            minBytes: options.fetchMinBytes,
            maxWaitTimeInMs: Duration.toMillis(options.fetchMaxWait),
            allowAutoTopicCreation: false,
          })
          limitDecodedBytesPerPartition(options.fetchMaxBytesPerPartition)
          c.on(c.events.GROUP_JOIN, (e) => {
            joins++
            joined = true
            commitFailure = undefined
            membershipLost = undefined
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
        // What each partition has in hand, for the group generation it was fetched in.
        const lanes = new Map<number, Lane>()
        // Set when the scope closes: no batch is handed over any more.
        let stopping: Promise<void> | undefined

        /** The partition's lane of this group generation, to which its commits belong. */
        const isCurrent = (lane: Lane) => lanes.get(lane.partition) === lane && lane.generation === joins

        const clearTimer = (lane: Lane) => {
          if (lane.timer !== undefined) clearTimeout(lane.timer)
          lane.timer = undefined
        }

        /** Commits the lane's finished point now; a failure is noted, and the next try waits. */
        const commitLane = async (lane: Lane): Promise<void> => {
          const last = lane.finished
          if (last === undefined) return
          lane.finished = undefined
          const offset = nextOffset(last)
          const retryLater = () => {
            lane.finished ??= last
            lane.notBefore = Date.now() + Math.max(commitEvery, 1_000)
          }
          if (!options.commitOffsets) {
            // Committed already, elsewhere (in each batch's transaction with its writes).
            committed.set(lane.partition, { offset, highWatermark: lane.highWatermark, at: Date.now() })
            return
          }
          // A seek is pending (the partition is read again from elsewhere): not now.
          if (lane.payload.isStale()) return retryLater()
          try {
            await lane.payload.commitOffsetsIfNecessary({
              topics: [{ topic: lane.topic, partitions: [{ partition: lane.partition, offset }] }],
            })
          } catch (cause) {
            retryLater()
            if (isMembershipError(cause)) membershipLost ??= cause
            if (commitFailure === undefined) {
              commitFailure = { since: Date.now(), error: describeCause(cause) }
              await run(
                Effect.logWarning("committing offsets failed; trying again").pipe(
                  Effect.annotateLogs({ partition: lane.partition, offset, error: describeCause(cause) }),
                ),
              )
            }
            return
          }
          commitFailure = undefined
          const at = Date.now()
          lane.notBefore = at + commitEvery
          committed.set(lane.partition, { offset, highWatermark: lane.highWatermark, at })
        }

        /**
         * Commits the lane's finished point once KAFKA__COMMIT_INTERVAL_SECONDS have passed since
         * its last commit (at once if they have), one commit at a time.
         */
        const scheduleCommit = (lane: Lane): void => {
          if (lane.finished === undefined || lane.committing !== undefined || lane.timer !== undefined) return
          if (!isCurrent(lane)) return
          const wait = lane.notBefore - Date.now()
          if (wait > 0) {
            lane.timer = setTimeout(() => {
              lane.timer = undefined
              scheduleCommit(lane)
            }, wait)
            return
          }
          void startCommit(lane).then(() => scheduleCommit(lane))
        }

        /** Commits the lane's finished point, as the lane's one commit in progress. */
        const startCommit = (lane: Lane): Promise<void> => {
          const commit = commitLane(lane).finally(() => {
            lane.committing = undefined
          })
          lane.committing = commit
          return commit
        }

        /** Commits what the lane has finished, now, after a commit in progress. */
        const flush = async (lane: Lane): Promise<void> => {
          clearTimer(lane)
          while (lane.committing !== undefined) await lane.committing
          // The commit awaited may have scheduled the next one.
          clearTimer(lane)
          if (lane.finished === undefined || !isCurrent(lane)) return
          await startCommit(lane)
        }

        /** The settled batches at the head of the lane move its finished point (or give it up). */
        const advance = (lane: Lane): void => {
          while (lane.inFlight.length > 0 && lane.inFlight[0]!.written !== undefined) {
            const { batch, written } = lane.inFlight.shift()!
            if (!written) lane.abandoned = true
            else if (!lane.abandoned) {
              lane.finished = batch.lastOffset
              lane.readFrom = nextOffset(batch.lastOffset)
            }
          }
          if (lane.abandoned && lane.inFlight.length === 0 && stopping === undefined) void readAgain(lane)
          else scheduleCommit(lane)
        }

        /** Waits for the oldest batch of the lane to settle (it has left the lane after). */
        const settleOldest = async (lane: Lane): Promise<void> => {
          const oldest = lane.inFlight[0]
          if (oldest !== undefined) await run(Effect.exit(Deferred.await(oldest.done)))
        }
        const settleAll = async (lane: Lane): Promise<void> => {
          while (lane.inFlight.length > 0) await settleOldest(lane)
        }

        /**
         * After a batch was given up and every batch of its lane settled: what was written before
         * it is committed, and the partition is read again from there with a fresh lane.
         */
        const readAgain = async (lane: Lane): Promise<void> => {
          if (lanes.get(lane.partition) !== lane) return
          await flush(lane)
          if (lanes.get(lane.partition) !== lane) return
          lanes.delete(lane.partition)
          clearTimer(lane)
          if (lane.readFrom !== undefined && lane.generation === joins && lane.payload.isRunning())
            consumer.seek({ topic: lane.topic, partition: lane.partition, offset: lane.readFrom })
        }

        /** Every lane's batches settled and what they finished committed. */
        const drain = () =>
          Promise.all(
            [...lanes.values()].map(async (lane) => {
              await settleAll(lane)
              await flush(lane)
            }),
          ).then(() => undefined)

        // A worker completes the batch's Deferred whatever happens (done when handled,
        // abandoned when interrupted), so whoever waits for it always wakes up. Its bytes go
        // back to the budget, and its lane moves, before that: never later than the batch is done.
        const worker = Effect.uninterruptibleMask((restore) =>
          Effect.flatMap(restore(Queue.take(queue)), (work) =>
            restore(handle(work.entry.batch)).pipe(
              Effect.onExit((exit) =>
                Semaphore.release(bytes, work.bytes).pipe(
                  Effect.andThen(
                    Effect.sync(() => {
                      work.entry.written = Exit.isSuccess(exit)
                      advance(work.lane)
                    }),
                  ),
                  Effect.andThen(
                    Deferred.done(
                      work.entry.done,
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

        /** The group no longer counts this instance as a member: said once, then kafkajs rejoins. */
        const rejoin = async (cause: unknown, partition: number): Promise<never> => {
          commitFailure ??= { since: Date.now(), error: describeCause(cause) }
          await run(
            Effect.logWarning(
              "the consumer group no longer counts this instance as a member; rejoining it (batches written since the last commit will be read again)",
            ).pipe(Effect.annotateLogs({ topic: options.topic, partition, error: describeCause(cause) })),
          )
          // kafkajs rejoins the group only when it sees its own error as it is.
          throw cause
        }

        /**
         * One fetch of one partition: its batches go to the workers, with at most `depth` of the
         * partition in flight at a time, and the callback returns once the last one is handed
         * over, so that the partition's next fetch overlaps the writes of this one. Each batch's
         * offset is resolved as it is handed over (the next fetch starts after it); commits
         * follow the batches as they finish (`advance`), apart from the fetches.
         */
        const eachBatch = async (payload: EachBatchPayload): Promise<void> => {
          const fetched = payload.batch
          if (stopping !== undefined) return stopping
          if (membershipLost !== undefined) return rejoin(membershipLost, fetched.partition)
          // The group generation it was fetched in.
          const generation = joins
          let lane = lanes.get(fetched.partition)
          if (lane === undefined || lane.generation !== generation) {
            // Batches of an earlier generation still in hand settle first: writes stay in offset order.
            if (lane !== undefined) {
              clearTimer(lane)
              await settleAll(lane)
            }
            lane = {
              topic: fetched.topic,
              partition: fetched.partition,
              generation,
              inFlight: [],
              finished: undefined,
              readFrom: undefined,
              abandoned: false,
              notBefore: 0,
              committing: undefined,
              timer: undefined,
              payload,
              highWatermark: fetched.highWatermark,
            }
            lanes.set(fetched.partition, lane)
          }
          lane.payload = payload
          lane.highWatermark = fetched.highWatermark
          // A batch was given up: the partition is read again from its commit point (readAgain).
          if (lane.abandoned) return

          // Heartbeats keep the membership alive while the partition waits for room in flight.
          const beat = setInterval(
            () =>
              payload.heartbeat().catch((cause: unknown) => {
                if (isMembershipError(cause)) membershipLost ??= cause
              }),
            heartbeatEvery,
          )
          let handedAll = true
          try {
            for (const messages of batchesOf(fetched.messages, options.batchSize, batchBytes)) {
              while (lane.inFlight.length >= depth && !lane.abandoned) await settleOldest(lane)
              if (
                lane.abandoned ||
                stopping !== undefined ||
                membershipLost !== undefined ||
                !payload.isRunning() ||
                payload.isStale()
              ) {
                handedAll = false
                break
              }
              const batch: Batch = {
                topic: fetched.topic,
                partition: fetched.partition,
                messages,
                firstOffset: messages[0]!.offset,
                lastOffset: messages[messages.length - 1]!.offset,
                highWatermark: fetched.highWatermark,
                sequence: (sequences.get(fetched.partition) ?? 0) + 1,
                afterSettled: lane.inFlight.length === 0,
                generation,
              }
              sequences.set(fetched.partition, batch.sequence)
              lane.readFrom ??= batch.firstOffset
              // A batch larger than the whole budget takes all of it, alone.
              const size = Math.min(bytesBudget, bytesOf(messages))
              await run(Semaphore.take(bytes, size))
              const entry: InFlight = { batch, done: Deferred.makeUnsafe(), written: undefined }
              lane.inFlight.push(entry)
              payload.resolveOffset(batch.lastOffset)
              await run(Queue.offer(queue, { entry, lane, bytes: size }))
            }
            if (membershipLost !== undefined) await rejoin(membershipLost, fetched.partition)
            const failure = decodeFailureOf(fetched)
            if (failure !== undefined && handedAll && payload.isRunning() && !payload.isStale()) {
              const wait = await run(
                undecodable({
                  topic: fetched.topic,
                  partition: fetched.partition,
                  offset: failure.offset,
                  reason: describeCause(failure.error),
                }),
              )
              // The undecodable record batch was not resolved: the next fetch starts at it.
              await pause(Duration.toMillis(wait), payload)
            }
          } finally {
            clearInterval(beat)
          }
          await payload.heartbeat().catch(() => undefined)
        }

        const runConfig: ConsumerRunConfig & { readonly beforeRejoin: () => Promise<void> } = {
          autoCommit: false,
          eachBatchAutoResolve: false,
          partitionsConsumedConcurrently: options.partitionsConcurrency,
          eachBatch,
          // Called by the patched kafkajs when the group rebalances, before it rejoins: the batches
          // in hand settle and are committed while this instance is still a member, so that a
          // partition that moves is read by its next owner from after them.
          beforeRejoin: async () => {
            await run(
              Effect.logInfo("the group is rebalancing: finishing the batches in hand and committing them"),
            )
            let timer: ReturnType<typeof setTimeout> | undefined
            await Promise.race([
              drain(),
              new Promise((wake) => (timer = setTimeout(wake, rebalanceDrainTimeout))),
            ])
            clearTimeout(timer)
          },
        }
        yield* Effect.tryPromise({
          try: () => consumer.run(runConfig),
          catch: (cause) => new KafkaConnectionError({ client: "consumer", brokers, cause }),
        })

        // Runs before the workers are interrupted (finalizers run in reverse order).
        yield* Effect.addFinalizer(() =>
          Effect.gen(function* () {
            yield* Effect.logInfo("stopping the consumer: no new batches, finishing the ones in flight")
            // A fetch that arrives meanwhile waits here, so the fetches do not spin.
            const draining = drain()
            stopping = draining
            const drained = yield* Effect.promise(() => draining).pipe(
              Effect.timeoutOption(options.shutdownTimeout),
            )
            if (Option.isNone(drained)) {
              yield* Effect.logWarning(
                `batches still in flight after ${Duration.format(options.shutdownTimeout)}: abandoning them uncommitted (they will be read again)`,
              )
              yield* Fiber.interruptAll(workers)
            }
            for (const lane of lanes.values()) clearTimer(lane)
            yield* Effect.promise(() => consumer.stop()).pipe(Effect.timeoutOption(disconnectTimeout))
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
