/**
 * Kafka transactions for KAFKA__DELIVERY=exactly_once: one transactional producer per source
 * partition, its transactional id `<consumer group>.<source topic>.<partition>` (the classic
 * scheme; kafkajs' sendOffsets carries no group generation, so the consumer-group fencing of
 * newer clients is not available). A producer is made the first time its partition has a batch
 * here; its first transaction fences every earlier producer of that id (the broker aborts or
 * finishes their open transactions first), and only then is the group's committed offset of the
 * partition read again: messages below it were written by the instance that had the partition
 * before, and are not written twice. A batch's sink messages, its dead letters and the consumed
 * offset go in one transaction, committed by `transact` once `work` succeeded, aborted if
 * anything failed; readers with isolation level read_committed see each message once.
 *
 * A fenced producer (another instance took the partition) fails with a KafkaProduceError of
 * kind `fenced`. Each call to the broker (making and fencing the producer, each send, the offset
 * and the commit) has KAFKA__REQUEST_TIMEOUT_SECONDS x 6 as its deadline, past which it fails as
 * transient. After any failure the producer is dropped: the partition's next transaction, if
 * this instance still has the partition, starts with a new one (which aborts what the old one
 * left open).
 */
import { Context, Duration, Effect, Layer } from "effect"
import { type Message, Partitioners, type Producer, type Transaction } from "kafkajs"
import { AppConfig } from "../Config/AppConfig.js"
import { compressionTypes } from "./Codecs.js"
import { describeCause, KafkaConnectionError, KafkaProduceError, kindOfKafkaError } from "./Errors.js"
import { KafkaAdmin } from "./KafkaAdmin.js"
import { KafkaClient } from "./KafkaClient.js"
import {
  batchOverheadBytes,
  KafkaProducer,
  type ProducerShape,
  requestsOf,
  withinDeadline,
} from "./Producer.js"

export interface TransactionsShape {
  /**
   * The partition's producer, made and fenced on first use: the offset the group had committed
   * for the partition once every earlier producer was fenced ("-1" for none).
   */
  readonly fence: (partition: number) => Effect.Effect<bigint, KafkaConnectionError | KafkaProduceError>
  /** Forgets the partition's producer: its next use makes a new one, which fences every earlier one again. */
  readonly forget: (partition: number) => Effect.Effect<void>
  /**
   * One transaction of the partition's producer: `work` sends through the producer it is given;
   * then the consumed offset `next` goes in and the transaction commits. Any failure aborts it.
   */
  readonly transact: <A, E>(
    partition: number,
    next: string,
    work: (producer: ProducerShape) => Effect.Effect<A, E>,
  ) => Effect.Effect<A, E | KafkaConnectionError | KafkaProduceError>
}

/** What a transaction that the broker expired (open past its timeout) failed with. */
export class TransactionExpired extends Error {
  override readonly name = "TransactionExpired"
}

interface Owned {
  readonly producer: Producer
  readonly fencedAt: bigint
}

/**
 * The producers' transaction timeout (what the broker waits before it aborts an open transaction
 * and fences its producer) and the longest one attempt may stay open here: room for four sends at
 * their deadline (KAFKA__REQUEST_TIMEOUT_SECONDS x 6 each), at most the broker's default limit of
 * 15 minutes; an attempt is abandoned (and retried) one request timeout before the broker would.
 */
export const transactionTimeouts = (sendDeadline: Duration.Duration, requestTimeout: Duration.Duration) => {
  const broker = Duration.min(Duration.times(sendDeadline, 4), Duration.minutes(15))
  return { broker, attempt: Duration.subtract(broker, requestTimeout) }
}

export class KafkaTransactions extends Context.Service<KafkaTransactions, TransactionsShape>()(
  "pipeline/KafkaTransactions",
) {
  static readonly layer = Layer.effect(
    KafkaTransactions,
    Effect.gen(function* () {
      const { kafka } = yield* AppConfig
      const client = yield* KafkaClient
      const admin = yield* KafkaAdmin
      const shared = yield* KafkaProducer
      const brokers = kafka.brokers.join(",")
      const owned = new Map<number, Promise<Owned>>()
      // The offset this instance's last transaction of each partition committed.
      const committedHere = new Map<number, bigint>()
      const requestTimeoutMs = Duration.toMillis(kafka.requestTimeout)
      const timeouts = transactionTimeouts(kafka.sendDeadline, kafka.requestTimeout)

      const failure = (topic: string, messages: number, cause: unknown) =>
        new KafkaProduceError({ topic, messages, kind: kindOfKafkaError(cause), cause })

      /** A call to the broker that has not answered by the send deadline fails as transient. */
      const deadline = <A, E>(what: string, topic: string, messages: number, call: Effect.Effect<A, E>) =>
        withinDeadline(call, kafka.sendDeadline, { topic, messages, what: `${what}: no answer` })

      const open = async (partition: number): Promise<Owned> => {
        const producer = client.producer({
          transactionalId: `${kafka.consumerGroup}.${kafka.topicSource}.${partition}`,
          idempotent: true,
          maxInFlightRequests: 1,
          allowAutoTopicCreation: false,
          createPartitioner: Partitioners.DefaultPartitioner,
          transactionTimeout: Duration.toMillis(timeouts.broker),
        })
        await producer.connect()
        // The first transaction initializes the producer id, which fences every earlier producer
        // of this id; an empty one is enough.
        const first = await producer.transaction()
        await first.abort()
        await admin.connect()
        const offsets = await admin.fetchOffsets({
          groupId: kafka.consumerGroup,
          topics: [kafka.topicSource],
        })
        const committed = offsets
          .find((t) => t.topic === kafka.topicSource)
          ?.partitions.find((p) => p.partition === partition)?.offset
        return { producer, fencedAt: BigInt(committed ?? "-1") }
      }

      const ownedFor = (partition: number) =>
        deadline(
          `making and fencing the transactional producer of partition ${partition}`,
          kafka.topicSink,
          0,
          Effect.tryPromise({
            try: () => {
              let pending = owned.get(partition)
              if (pending === undefined) {
                pending = open(partition)
                owned.set(partition, pending)
                pending.catch(() => owned.delete(partition))
              }
              return pending
            },
            catch: (cause) =>
              kindOfKafkaError(cause) === "fenced"
                ? failure(kafka.topicSink, 0, cause)
                : new KafkaConnectionError({ client: "producer", brokers, cause }),
          }),
        )

      /**
       * Forgets the partition's producer (fenced, or in a state not to be trusted); it is
       * disconnected in the background, so that a producer still being made never holds this up.
       */
      const drop = (partition: number) =>
        Effect.sync(() => {
          const pending = owned.get(partition)
          owned.delete(partition)
          committedHere.delete(partition)
          pending?.then((gone) => gone.producer.disconnect()).catch(() => undefined)
        })

      const sender = (tx: Transaction): ProducerShape => ({
        maxMessageBytes: shared.maxMessageBytes,
        send: (topic: string, messages: ReadonlyArray<Message>, compression = kafka.compression) =>
          messages.length === 0
            ? Effect.void
            : Effect.forEach(
                requestsOf(messages, shared.maxMessageBytes(topic) - batchOverheadBytes),
                (request) =>
                  deadline(
                    "a send in the transaction",
                    topic,
                    request.length,
                    Effect.tryPromise({
                      try: () =>
                        tx.send({
                          topic,
                          acks: -1,
                          timeout: requestTimeoutMs,
                          messages: request,
                          compression: compressionTypes[compression],
                        }),
                      catch: (cause) => failure(topic, request.length, cause),
                    }),
                  ),
                { discard: true },
              ),
      })

      const transact = <A, E>(
        partition: number,
        next: string,
        work: (producer: ProducerShape) => Effect.Effect<A, E>,
      ): Effect.Effect<A, E | KafkaConnectionError | KafkaProduceError> => {
        // When the transaction began: one open for longer than the broker's timeout was expired by it.
        let began: number | undefined
        const openFor = () => (began === undefined ? 0 : Date.now() - began)
        const expired = () => began !== undefined && openFor() >= Duration.toMillis(timeouts.broker)
        const expiredError = (cause: unknown) =>
          new KafkaProduceError({
            topic: kafka.topicSink,
            messages: 0,
            kind: "fenced",
            cause: new TransactionExpired(
              `the broker expired the transaction: it was open for ${Math.round(openFor() / 1000)} s, past the producers' transaction timeout (${Duration.format(timeouts.broker)}); the process was held up (a stopped or starved event loop): ${describeCause(cause)}`,
            ),
          })
        return Effect.gen(function* () {
          const { producer } = yield* ownedFor(partition)
          const tx = yield* deadline(
            "beginning the transaction",
            kafka.topicSink,
            0,
            Effect.tryPromise({
              try: () => producer.transaction(),
              catch: (cause) => failure(kafka.topicSink, 0, cause),
            }),
          )
          began = Date.now()
          const abort = Effect.promise(() => tx.abort().catch(() => undefined)).pipe(
            // An abort that gets no answer is left to the broker: the next producer's fence ends it.
            Effect.timeoutOption(kafka.sendDeadline),
          )
          const result = yield* work(sender(tx)).pipe(Effect.onError(() => abort))
          yield* deadline(
            "committing the transaction",
            kafka.topicSink,
            0,
            Effect.tryPromise({
              try: async () => {
                await tx.sendOffsets({
                  consumerGroupId: kafka.consumerGroup,
                  topics: [{ topic: kafka.topicSource, partitions: [{ partition, offset: next }] }],
                })
                await tx.commit()
              },
              catch: (cause) => failure(kafka.topicSink, 0, cause),
            }),
          ).pipe(Effect.onError(() => abort))
          committedHere.set(partition, BigInt(next))
          return result
        }).pipe(
          // Never open past the broker's transaction timeout: it would abort the transaction and
          // fence this producer, which would read as another instance having the partition.
          Effect.timeoutOrElse({
            duration: timeouts.attempt,
            orElse: () =>
              Effect.fail(
                expired()
                  ? expiredError("the attempt's own deadline came late")
                  : new KafkaProduceError({
                      topic: kafka.topicSink,
                      messages: 0,
                      kind: "transient",
                      cause: new Error(
                        `the transaction was still open after ${Duration.format(timeouts.attempt)}; aborted before the broker's transaction timeout (${Duration.format(timeouts.broker)}) would expire it`,
                      ),
                    }),
              ),
          }),
          // A fenced producer whose transaction outlived the broker's timeout was not fenced by
          // another instance: the broker expired the transaction. Said so; handled as fenced.
          Effect.mapError((error) =>
            error instanceof KafkaProduceError && error.kind === "fenced" && expired()
              ? expiredError(error)
              : error,
          ),
          // After a failure the producer's state is not to be trusted: the next transaction of the
          // partition starts with a new producer, whose first transaction aborts this one's.
          Effect.tapError(() => drop(partition)),
        )
      }

      yield* Effect.addFinalizer(() =>
        Effect.promise(async () => {
          for (const pending of owned.values()) {
            const o = await pending.catch(() => undefined)
            await o?.producer.disconnect().catch(() => undefined)
          }
          // A broker that does not answer leaves them behind: shutdown waits no longer than this.
        }).pipe(Effect.timeoutOption("10 seconds")),
      )

      return KafkaTransactions.of({
        fence: (partition) =>
          Effect.map(ownedFor(partition), (o) => {
            const here = committedHere.get(partition)
            return here !== undefined && here > o.fencedAt ? here : o.fencedAt
          }),
        forget: drop,
        transact,
      })
    }),
  )
}
