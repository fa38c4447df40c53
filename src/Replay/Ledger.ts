/**
 * The ledger of replays: which dead letters have been replayed, by any run of `replay`, whatever
 * its group or flags. A compacted topic beside the dead-letter topic, `<topic>.replayed`, with one
 * message per replayed dead letter, keyed `<partition>/<offset>` of the dead letter, its value
 * what became of it (outcome, when, the group and the pipeline's fingerprint): a replay passes
 * over whatever the ledger holds, so that no dead letter is replayed twice, and an operator can
 * read it (kafka-console-consumer) to see what was replayed. Written with the replay's outputs:
 * in the same transaction with exactly_once; after them, before the group's commit, otherwise.
 */
import { Deferred, Duration, Effect, Exit } from "effect"
import type { Message } from "kafkajs"
import { KafkaConnectionError, KafkaTopicError } from "../Kafka/Errors.js"
import { KafkaClient } from "../Kafka/KafkaClient.js"
import type { Outcome } from "./Capture.js"

export const ledgerTopicOf = (topic: string) => `${topic}.replayed`

/** The ledger's message for a replayed dead letter. */
export const ledgerEntry = (
  position: string,
  entry: { readonly outcome: Outcome; readonly group: string; readonly pipeline: string; readonly at: Date },
): Message => ({
  key: position,
  value: JSON.stringify({
    outcome: entry.outcome,
    group: entry.group,
    pipeline: entry.pipeline,
    at: entry.at.toISOString(),
  }),
})

/** Makes the ledger topic (compacted: one message per dead letter is all it needs to keep) when it is missing. */
export const ensureLedger = (topic: string, brokers: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const client = yield* KafkaClient
    const admin = client.admin()
    yield* Effect.acquireUseRelease(
      Effect.tryPromise({
        try: () => admin.connect(),
        catch: (cause) => new KafkaConnectionError({ client: "admin", brokers: brokers.join(","), cause }),
      }),
      () =>
        Effect.tryPromise({
          try: async () => {
            if ((await admin.listTopics()).includes(topic)) return false
            return admin.createTopics({
              topics: [{ topic, configEntries: [{ name: "cleanup.policy", value: "compact" }] }],
              waitForLeaders: true,
            })
          },
          catch: (cause) => new KafkaTopicError({ topics: [topic], cause }),
        }).pipe(
          Effect.tap((created) =>
            created ? Effect.logInfo(`created the replay ledger, topic ${topic}`) : Effect.void,
          ),
        ),
      () => Effect.promise(() => admin.disconnect().catch(() => undefined)),
    )
  })

/**
 * The positions (`<partition>/<offset>`) of every dead letter the ledger says was replayed, as a
 * read_committed consumer sees it: read to the end it had when this began. None when the topic
 * does not exist (nothing was ever replayed, or a dry run before the first replay).
 */
export const loadLedger = (topic: string, brokers: ReadonlyArray<string>, group: string) =>
  Effect.gen(function* () {
    const client = yield* KafkaClient
    const failure = (cause: unknown) =>
      new KafkaConnectionError({ client: "consumer", brokers: brokers.join(","), cause })
    const admin = client.admin()
    const ends = yield* Effect.acquireUseRelease(
      Effect.tryPromise({ try: () => admin.connect(), catch: failure }),
      () =>
        Effect.tryPromise({
          try: async () =>
            (await admin.listTopics()).includes(topic)
              ? new Map((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, BigInt(p.high)]))
              : new Map<number, bigint>(),
          catch: failure,
        }),
      () => Effect.promise(() => admin.disconnect().catch(() => undefined)),
    )
    const positions = new Set<string>()
    const pending = new Set([...ends].filter(([, end]) => end > 0n).map(([p]) => p))
    if (pending.size === 0) return positions as ReadonlySet<string>
    const done = yield* Deferred.make<void>()
    const reached = (partition: number, lastOffset: string) => {
      if (BigInt(lastOffset) + 1n >= (ends.get(partition) ?? 0n)) pending.delete(partition)
      if (pending.size === 0) Deferred.doneUnsafe(done, Exit.void)
    }
    // A group of its own that never commits: it is gone once this reader leaves.
    const consumer = client.consumer({ groupId: group, maxWaitTimeInMs: 250, allowAutoTopicCreation: false })
    yield* Effect.acquireUseRelease(
      Effect.tryPromise({
        try: async () => {
          await consumer.connect()
          await consumer.subscribe({ topics: [topic], fromBeginning: true })
          // Batches of nothing but transaction markers never reach eachBatch.
          consumer.on(consumer.events.END_BATCH_PROCESS, (e) => {
            if (e.payload.batchSize === 0) reached(e.payload.partition, e.payload.lastOffset)
          })
          await consumer.run({
            autoCommit: false,
            eachBatch: async ({ batch }) => {
              for (const m of batch.messages) if (m.key !== null) positions.add(m.key.toString())
              reached(batch.partition, batch.lastOffset())
            },
          })
        },
        catch: failure,
      }),
      () => Deferred.await(done),
      () =>
        Effect.promise(() => consumer.disconnect().catch(() => undefined)).pipe(
          Effect.timeoutOption(Duration.seconds(10)),
        ),
    )
    return positions as ReadonlySet<string>
  })
