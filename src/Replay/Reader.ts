/**
 * Reads given offset ranges of a topic, partition by partition, in batches of up to
 * PIPELINE__BATCH_SIZE messages, and hands each batch to `handle`, one batch of a partition at
 * a time, and up to PIPELINE__PARTITIONS_CONCURRENCY partitions at once. A kafkajs consumer of
 * the replay's own group reads them (so that two replays of one group cannot run at once
 * unnoticed), positioned at each range's start whatever the group has committed; with `commit`,
 * the offset `handle` answers is committed once it is done with a batch. Done when every range
 * has been read to its end: transaction markers and aborted messages are read past, never
 * handed over.
 *
 * Closing the scope stops it: the batch in hand finishes (up to PIPELINE__SHUTDOWN_TIMEOUT_SECONDS,
 * then it is interrupted, uncommitted), no other starts, and the consumer disconnects.
 */
import { Cause, Data, Deferred, Duration, Effect, Exit, Option } from "effect"
import type { Consumer, EachBatchPayload, KafkaMessage } from "kafkajs"
import { describeCause, KafkaConnectionError } from "../Kafka/Errors.js"
import { KafkaClient } from "../Kafka/KafkaClient.js"
import { decodeFailureOf, limitDecodedBytesPerPartition } from "../Kafka/KafkajsPatch.js"
import { batchesOf } from "../Kafka/KafkaSource.js"
import type { PartitionRange } from "./Range.js"

export interface ReaderOptions {
  readonly brokers: ReadonlyArray<string>
  readonly topic: string
  readonly group: string
  readonly ranges: ReadonlyArray<PartitionRange>
  readonly batchSize: number
  readonly partitionsConcurrency: number
  readonly sessionTimeout: Duration.Duration
  readonly fetchMaxBytes: number
  readonly fetchMaxBytesPerPartition: number
  readonly shutdownTimeout: Duration.Duration
  /** Commit the offset `handle` answers once a batch is handled (false: the handler commits, or nothing is). */
  readonly commit: boolean
}

/** Consecutive offsets of one partition and the messages among them; `lastOffset` may be past the last message. */
export interface Span {
  readonly partition: number
  readonly messages: ReadonlyArray<KafkaMessage>
  readonly firstOffset: string
  readonly lastOffset: string
  /** How many times the consumer had joined its group when the span was read. */
  readonly generation: number
  readonly highWatermark: string
}

/** Reading cannot go on: the consumer stopped for good, or a record batch cannot be decoded. */
export class ReadFailed extends Data.TaggedError("ReadFailed")<{ readonly reason: string }> {
  override get message() {
    return this.reason
  }
}

const disconnectTimeout = Duration.seconds(10)

/**
 * `handle` answers with the offset the partition's group may commit once the span is done (with
 * `commit`); it may be short of the span's end.
 */
export const readRanges = <E>(options: ReaderOptions, handle: (span: Span) => Effect.Effect<bigint, E>) =>
  Effect.gen(function* () {
    const pending = new Map(options.ranges.filter((r) => r.start < r.end).map((r) => [r.partition, r]))
    if (pending.size === 0) return
    const client = yield* KafkaClient
    const { topic } = options
    const brokers = options.brokers.join(",")
    // The next offset to read, per partition.
    const next = new Map(options.ranges.map((r) => [r.partition, r.start]))
    const done = yield* Deferred.make<void, E | ReadFailed>()
    const context = yield* Effect.context<never>()
    const abort = new AbortController()
    let stopping = false
    let joins = 0

    const finish = (exit: Exit.Exit<void, E | ReadFailed>) => {
      stopping = stopping || Exit.isFailure(exit)
      Deferred.doneUnsafe(done, exit)
    }

    const consumer: Consumer = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: async () => {
          const c = client.consumer({
            groupId: options.group,
            sessionTimeout: Duration.toMillis(options.sessionTimeout),
            heartbeatInterval: Math.min(3_000, Duration.toMillis(options.sessionTimeout) / 3),
            maxBytesPerPartition: options.fetchMaxBytesPerPartition,
            maxBytes: options.fetchMaxBytes,
            maxWaitTimeInMs: 500,
            allowAutoTopicCreation: false,
          })
          limitDecodedBytesPerPartition(options.fetchMaxBytesPerPartition)
          await c.connect()
          await c.subscribe({ topics: [topic], fromBeginning: true })
          return c
        },
        catch: (cause) => new KafkaConnectionError({ client: "consumer", brokers, cause }),
      }),
      (c, exit) =>
        Effect.gen(function* () {
          stopping = true
          if (Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause))
            yield* Effect.logInfo("stopping the replay: the batch in hand is finished, no other is started")
          const stopped = yield* Effect.promise(() => c.stop().catch(() => undefined)).pipe(
            Effect.timeoutOption(options.shutdownTimeout),
          )
          if (Option.isNone(stopped)) {
            yield* Effect.logWarning(
              `the batch in hand was not done after ${Duration.format(options.shutdownTimeout)}: given up uncommitted (the next replay reads it again)`,
            )
            abort.abort()
            yield* Effect.promise(() => c.stop().catch(() => undefined)).pipe(
              Effect.timeoutOption(disconnectTimeout),
            )
          }
          yield* Effect.promise(() => c.disconnect().catch(() => undefined)).pipe(
            Effect.timeoutOption(disconnectTimeout),
          )
        }),
    )

    const pause = (partition: number) => consumer.pause([{ topic, partitions: [partition] }])

    /** Read up to `offset` (the next one to read): the partition is done once that is its range's end. */
    const reached = (partition: number, offset: bigint) => {
      const range = pending.get(partition)
      if (range === undefined) return
      if (offset > (next.get(partition) ?? 0n)) next.set(partition, offset < range.end ? offset : range.end)
      if (offset < range.end) return
      pending.delete(partition)
      pause(partition)
      if (pending.size === 0) finish(Exit.void)
    }

    consumer.on(consumer.events.GROUP_JOIN, (e) => {
      joins++
      // Wherever the group stands, each partition goes on from where this replay has read to.
      for (const partition of e.payload.memberAssignment[topic] ?? []) {
        const offset = next.get(partition)
        if (pending.has(partition) && offset !== undefined)
          consumer.seek({ topic, partition, offset: offset.toString() })
        else pause(partition)
      }
    })
    // A fetch of nothing but transaction markers or aborted messages is never handed to eachBatch.
    consumer.on(consumer.events.END_BATCH_PROCESS, (e) => {
      if (e.payload.batchSize === 0 && e.payload.topic === topic)
        reached(e.payload.partition, BigInt(e.payload.lastOffset) + 1n)
    })
    consumer.on(consumer.events.CRASH, (e) => {
      if (!e.payload.restart)
        finish(
          Exit.fail(
            new ReadFailed({
              reason: `the Kafka consumer stopped after an error it could not recover from: ${describeCause(e.payload.error)}`,
            }),
          ),
        )
    })

    const eachBatch = async (payload: EachBatchPayload): Promise<void> => {
      const { batch } = payload
      const partition = batch.partition
      const range = pending.get(partition)
      if (range === undefined || stopping) return
      const from = next.get(partition) ?? range.start
      const inRange = batch.messages.filter((m) => {
        const offset = BigInt(m.offset)
        return offset >= from && offset < range.end
      })
      // The batch's last offset counts the markers and aborted messages after its last message.
      const lastFetched = BigInt(batch.lastOffset())
      const failure = decodeFailureOf(batch)
      const fetchedTo = failure === undefined ? lastFetched : BigInt(failure.offset) - 1n
      const upTo = fetchedTo < range.end - 1n ? fetchedTo : range.end - 1n
      const beat = setInterval(
        () => void payload.heartbeat().catch(() => undefined),
        Math.min(3_000, Duration.toMillis(options.sessionTimeout) / 3),
      )
      try {
        let position = from
        const chunks = batchesOf(inRange, options.batchSize)
        for (let i = 0; i < chunks.length; i++) {
          if (stopping || !payload.isRunning() || payload.isStale()) return
          const chunk = chunks[i]!
          const last = i === chunks.length - 1 ? upTo : BigInt(chunk[chunk.length - 1]!.offset)
          const exit = await Effect.runPromiseExitWith(context)(
            handle({
              partition,
              messages: chunk,
              firstOffset: position.toString(),
              lastOffset: last.toString(),
              generation: joins,
              highWatermark: batch.highWatermark,
            }),
            { signal: abort.signal },
          )
          if (Exit.isFailure(exit)) {
            if (!Cause.hasInterruptsOnly(exit.cause)) finish(Exit.failCause(exit.cause))
            return
          }
          position = last + 1n
          // Handled: after a rejoin the partition goes on from here, even if this commit fails.
          next.set(partition, position)
          payload.resolveOffset(last.toString())
          if (options.commit)
            await payload.commitOffsetsIfNecessary({
              topics: [{ topic, partitions: [{ partition, offset: exit.value.toString() }] }],
            })
        }
        if (upTo >= position) {
          // Nothing left but markers or aborted messages up to here.
          position = upTo + 1n
          payload.resolveOffset(upTo.toString())
        }
        reached(partition, position)
        if (failure !== undefined && position < range.end)
          finish(
            Exit.fail(
              new ReadFailed({
                reason: `partition ${partition} of ${topic}: the record batch at offset ${failure.offset} cannot be decoded: ${describeCause(failure.error)}`,
              }),
            ),
          )
      } finally {
        clearInterval(beat)
      }
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
    return yield* Deferred.await(done)
  })
