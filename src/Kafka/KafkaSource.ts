/**
 * The Kafka source: a kafkajs consumer group whose callbacks do no work themselves.
 *
 * `eachBatch` cuts the fetched batch into chunks of PIPELINE__BATCH_SIZE messages (and at most
 * their share of PIPELINE__MAX_IN_FLIGHT_BYTES), hands up to PIPELINE__BATCHES_IN_FLIGHT of
 * them at a time, each with a Deferred, to a bounded Queue, and waits for them in offset order;
 * worker fibers owned by the caller's scope take chunks, process them, and complete the
 * Deferred only once everything is written. The callback commits `last + 1` of the longest run
 * of finished chunks, at most every KAFKA__COMMIT_INTERVAL_SECONDS and always before it returns.
 * The bounded queue and the bytes budget are the backpressure: while the pipeline is slow or
 * stalled, kafkajs stops fetching. Offsets are never committed past a chunk that was abandoned,
 * nor for a partition that moved to another instance (stale).
 *
 * Shutdown (closing the scope) stops fetching, lets the chunks in hand finish within the
 * shutdown timeout, abandons them uncommitted after that, and disconnects.
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
import { AppConfig } from "../Config/AppConfig.js"
import { describeCause, KafkaCommitError, KafkaConnectionError } from "./Errors.js"
import { KafkaClient } from "./KafkaClient.js"

export interface Chunk {
  readonly topic: string
  readonly partition: number
  readonly messages: ReadonlyArray<KafkaMessage>
  readonly firstOffset: string
  readonly lastOffset: string
  /** The partition's high watermark when the batch was fetched (for lag). */
  readonly highWatermark: string
  /** The chunk before this one in the same fetch, if any: its writes go first (Pipeline/Lanes.ts). */
  readonly previous?: Chunk
}

/** The chunk was given up before it was fully written: it is not committed and will be read again. */
export class ChunkAbandoned extends Data.TaggedError("ChunkAbandoned")<{ readonly reason: string }> {}

export class KafkaConsumerCrashed extends Data.TaggedError("KafkaConsumerCrashed")<{
  readonly cause: unknown
}> {
  readonly retryable = false
  override get message() {
    return `the Kafka consumer stopped after an error it could not recover from: ${describeCause(this.cause)}`
  }
}

interface Work {
  readonly chunk: Chunk
  readonly done: Deferred.Deferred<void, ChunkAbandoned>
}

export interface SourceShape {
  /**
   * Starts consuming: every chunk goes through `handle`, with at most PIPELINE__BATCHES_IN_FLIGHT
   * chunks of each of PIPELINE__PARTITIONS_CONCURRENCY partitions in flight. Consumption stops
   * when the scope closes.
   */
  readonly consume: <E>(
    handle: (chunk: Chunk) => Effect.Effect<void, E>,
  ) => Effect.Effect<void, KafkaConnectionError, Scope.Scope>
  /** Fails when the consumer has stopped for good (kafkajs gave up restarting it). */
  readonly crashed: Effect.Effect<never, KafkaConsumerCrashed>
  /** True while the consumer is a member of its group. */
  readonly joined: Effect.Effect<boolean>
  /** The source topic's partitions in this member's assignment (empty while not in the group). */
  readonly assigned: Effect.Effect<ReadonlyArray<number>>
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
export const chunksOf = (
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
  static readonly layer = Layer.effect(
    KafkaSource,
    Effect.gen(function* () {
      const { kafka, pipeline } = yield* AppConfig
      const client = yield* KafkaClient
      const brokers = kafka.brokers.join(",")
      const crash = yield* Deferred.make<never, KafkaConsumerCrashed>()
      let joined = false
      let assigned: ReadonlyArray<number> = []
      const committed = new Map<number, { offset: string; highWatermark: string; at: number }>()

      const consumer: Consumer = yield* Effect.acquireRelease(
        Effect.tryPromise({
          try: async () => {
            const c = client.consumer({
              groupId: kafka.consumerGroup,
              sessionTimeout: Duration.toMillis(kafka.sessionTimeout),
              rebalanceTimeout: 60_000,
              heartbeatInterval: Math.min(3_000, Duration.toMillis(kafka.sessionTimeout) / 3),
              // Large fetches: the chunks of one fetch are processed several at a time, and each fetch ends
              // with a commit and a pause until its last chunk is written.
              maxBytesPerPartition: Math.max(kafka.maxMessageBytes, 8 * 1_048_576),
              maxBytes: Math.max(kafka.maxMessageBytes, 8 * 1_048_576) * pipeline.partitionsConcurrency,
              // A short fetch long-poll: stop() waits one out, so this bounds the shutdown (5 s by default).
              maxWaitTimeInMs: 500,
              allowAutoTopicCreation: false,
            })
            c.on(c.events.GROUP_JOIN, (e) => {
              joined = true
              assigned = [...(e.payload.memberAssignment[kafka.topicSource] ?? [])].sort((a, b) => a - b)
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
              topics: [kafka.topicSource],
              fromBeginning: kafka.autoOffsetReset === "earliest",
            })
            return c
          },
          catch: (cause) => new KafkaConnectionError({ client: "consumer", brokers, cause }),
        }),
        (c) => Effect.promise(() => c.disconnect().catch(() => undefined)),
      )

      const consume = <E>(handle: (chunk: Chunk) => Effect.Effect<void, E>) =>
        Effect.gen(function* () {
          const depth = pipeline.batchesInFlight
          const lanes = pipeline.partitionsConcurrency * depth
          const queue = yield* Queue.bounded<Work>(lanes)
          // The message bytes held by chunks in flight, across partitions.
          const bytesBudget = pipeline.maxInFlightBytes
          const bytes = yield* Semaphore.make(bytesBudget)
          // A chunk's share of the budget, so that every lane can hold one.
          const chunkBytes = Math.max(1, Math.floor(bytesBudget / lanes))
          const context = yield* Effect.context<never>()
          const run = Effect.runPromiseWith(context)
          const commitEvery = Duration.toMillis(kafka.commitInterval)

          // A worker completes the chunk's Deferred whatever happens (done when handled,
          // abandoned when interrupted), so the callback waiting for it always wakes up.
          const worker = Effect.uninterruptibleMask((restore) =>
            Effect.flatMap(restore(Queue.take(queue)), ({ chunk, done }) =>
              restore(handle(chunk)).pipe(
                Effect.onExit((exit) =>
                  Deferred.done(
                    done,
                    Exit.isSuccess(exit)
                      ? Exit.void
                      : Exit.fail(new ChunkAbandoned({ reason: Cause.pretty(exit.cause) })),
                  ),
                ),
              ),
            ),
          ).pipe(
            // The chunk is settled above whatever happened; a failure of one chunk never ends a worker.
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
            Array.from({ length: lanes }, () => worker),
            (w) => Effect.forkScoped(w),
          )

          /**
           * One fetch of one partition: its chunks go to the workers up to `depth` at a time, and
           * the offset after the longest run of finished chunks is committed at most every
           * KAFKA__COMMIT_INTERVAL_SECONDS and always before the callback returns (so before
           * the partition's next fetch, a rebalance or a stop). Nothing is committed past a chunk
           * that was abandoned, nor for a partition that moved to another instance.
           */
          const eachBatch = async (payload: EachBatchPayload): Promise<void> => {
            const { batch } = payload
            const inFlight: Array<{
              chunk: Chunk
              done: Deferred.Deferred<void, ChunkAbandoned>
              bytes: number
            }> = []
            let finished: string | undefined
            let abandoned = false
            let lastCommit = Date.now()

            const commit = async () => {
              if (finished === undefined || payload.isStale()) return
              const last = finished
              finished = undefined
              payload.resolveOffset(last)
              const offset = nextOffset(last)
              if (kafka.delivery === "exactly_once") {
                // Committed already, in each batch's transaction.
                committed.set(batch.partition, { offset, highWatermark: batch.highWatermark, at: Date.now() })
                return
              }
              await payload
                .commitOffsetsIfNecessary({
                  topics: [{ topic: batch.topic, partitions: [{ partition: batch.partition, offset }] }],
                })
                .catch((cause: unknown) => {
                  throw new KafkaCommitError({
                    topic: batch.topic,
                    partition: batch.partition,
                    offset,
                    cause,
                  })
                })
              lastCommit = Date.now()
              committed.set(batch.partition, { offset, highWatermark: batch.highWatermark, at: lastCommit })
            }
            /** Waits for the oldest chunk in flight; a finished one moves the commit point. */
            const settleOldest = async () => {
              const oldest = inFlight.shift()!
              const outcome = await run(Effect.exit(Deferred.await(oldest.done)))
              await run(Semaphore.release(bytes, oldest.bytes))
              if (Exit.isFailure(outcome)) abandoned = true
              else if (!abandoned) finished = oldest.chunk.lastOffset
            }

            // Heartbeats keep the membership alive while chunks wait in the queue or stall.
            const beat = setInterval(
              () => payload.heartbeat().catch(() => undefined),
              Math.min(3_000, Duration.toMillis(kafka.sessionTimeout) / 3),
            )
            try {
              let previous: Chunk | undefined
              for (const messages of chunksOf(batch.messages, pipeline.batchSize, chunkBytes)) {
                if (abandoned || !payload.isRunning() || payload.isStale()) break
                const chunk: Chunk = {
                  topic: batch.topic,
                  partition: batch.partition,
                  messages,
                  firstOffset: messages[0]!.offset,
                  lastOffset: messages[messages.length - 1]!.offset,
                  highWatermark: batch.highWatermark,
                  ...(previous === undefined ? {} : { previous }),
                }
                previous = chunk
                // A chunk larger than the whole budget takes all of it, alone.
                const size = Math.min(bytesBudget, bytesOf(messages))
                await run(Semaphore.take(bytes, size))
                const done = Deferred.makeUnsafe<void, ChunkAbandoned>()
                inFlight.push({ chunk, done, bytes: size })
                await run(Queue.offer(queue, { chunk, done }))
                while (inFlight.length >= depth) await settleOldest()
                if (Date.now() - lastCommit >= commitEvery) await commit()
              }
              while (inFlight.length > 0) await settleOldest()
              await commit()
            } finally {
              clearInterval(beat)
              // After a throw: the chunks still in flight settle, and give their bytes back.
              while (inFlight.length > 0) await settleOldest().catch(() => undefined)
            }
            await payload.heartbeat().catch(() => undefined)
          }

          yield* Effect.tryPromise({
            try: () =>
              consumer.run({
                autoCommit: false,
                eachBatchAutoResolve: false,
                partitionsConsumedConcurrently: pipeline.partitionsConcurrency,
                eachBatch,
              }),
            catch: (cause) => new KafkaConnectionError({ client: "consumer", brokers, cause }),
          })

          // Runs before the workers are interrupted (finalizers run in reverse order).
          yield* Effect.addFinalizer(() =>
            Effect.gen(function* () {
              yield* Effect.logInfo("stopping the consumer: no new batches, finishing the ones in flight")
              const stopped = yield* Effect.promise(() => consumer.stop()).pipe(
                Effect.timeoutOption(pipeline.shutdownTimeout),
              )
              if (Option.isNone(stopped)) {
                yield* Effect.logWarning(
                  `batches still in flight after ${Duration.format(pipeline.shutdownTimeout)}: abandoning them uncommitted (they will be read again)`,
                )
                yield* Fiber.interruptAll(workers)
                yield* Effect.promise(() => consumer.stop()).pipe(Effect.timeoutOption("10 seconds"))
              }
            }),
          )
        })

      return KafkaSource.of({
        consume,
        crashed: Deferred.await(crash),
        joined: Effect.sync(() => joined),
        assigned: Effect.sync(() => assigned),
        committed: Effect.sync(() => new Map(committed)),
      })
    }),
  )
}
