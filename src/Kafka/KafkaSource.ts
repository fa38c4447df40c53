/**
 * The Kafka source: a kafkajs consumer group whose callbacks do no work themselves.
 *
 * `eachBatch` cuts the fetched batch into chunks of PIPELINE__BATCH_SIZE, hands each chunk
 * with a Deferred to a bounded Queue and waits; worker fibers owned by the caller's scope take
 * chunks, process them, and complete the Deferred only once everything is written. Then the
 * callback commits `last + 1` for that partition. The bounded queue is the backpressure: while
 * the pipeline is slow or stalled, kafkajs stops fetching. Offsets are never committed for a
 * chunk that was abandoned or whose partition moved to another instance (stale).
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
   * Starts consuming: every chunk goes through `handle`, with at most PIPELINE__PARTITIONS_CONCURRENCY
   * chunks (one per partition) in flight. Consumption stops when the scope closes.
   */
  readonly consume: (
    handle: (chunk: Chunk) => Effect.Effect<void>,
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

export const chunksOf = <A>(items: ReadonlyArray<A>, size: number): ReadonlyArray<ReadonlyArray<A>> => {
  const out: A[][] = []
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size))
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
              maxBytesPerPartition: Math.max(kafka.maxMessageBytes, 1_048_576),
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

      const consume = (handle: (chunk: Chunk) => Effect.Effect<void>) =>
        Effect.gen(function* () {
          const queue = yield* Queue.bounded<Work>(pipeline.partitionsConcurrency)
          const context = yield* Effect.context<never>()
          const run = Effect.runPromiseWith(context)

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
                : Effect.logError("a batch ended with an unexpected error; it is not committed", cause),
            ),
            Effect.forever,
          )
          const workers = yield* Effect.forEach(
            Array.from({ length: pipeline.partitionsConcurrency }, () => worker),
            (w) => Effect.forkScoped(w),
          )

          const eachBatch = async (payload: EachBatchPayload): Promise<void> => {
            const { batch } = payload
            for (const messages of chunksOf(batch.messages, pipeline.batchSize)) {
              if (!payload.isRunning() || payload.isStale()) return
              const chunk: Chunk = {
                topic: batch.topic,
                partition: batch.partition,
                messages,
                firstOffset: messages[0]!.offset,
                lastOffset: messages[messages.length - 1]!.offset,
                highWatermark: batch.highWatermark,
              }
              const done = Deferred.makeUnsafe<void, ChunkAbandoned>()
              // Heartbeats keep the membership alive while a chunk waits in the queue or stalls.
              const beat = setInterval(
                () => payload.heartbeat().catch(() => undefined),
                Math.min(3_000, Duration.toMillis(kafka.sessionTimeout) / 3),
              )
              try {
                await run(Queue.offer(queue, { chunk, done }))
                const outcome = await run(Effect.exit(Deferred.await(done)))
                if (Exit.isFailure(outcome)) return
              } finally {
                clearInterval(beat)
              }
              if (payload.isStale()) return
              payload.resolveOffset(chunk.lastOffset)
              const offset = nextOffset(chunk.lastOffset)
              await payload
                .commitOffsetsIfNecessary({
                  topics: [{ topic: chunk.topic, partitions: [{ partition: chunk.partition, offset }] }],
                })
                .catch((cause: unknown) => {
                  throw new KafkaCommitError({
                    topic: chunk.topic,
                    partition: chunk.partition,
                    offset,
                    cause,
                  })
                })
              committed.set(chunk.partition, { offset, highWatermark: chunk.highWatermark, at: Date.now() })
              await payload.heartbeat().catch(() => undefined)
            }
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
