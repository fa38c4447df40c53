/**
 * Delivery exactly once on the Kafka side (KAFKA__DELIVERY=exactly_once): MongoDB first, in the
 * batch's turn, beside the keys of the durable duplicate windows; then one transaction holds the sink messages, every dead letter and the batch's
 * next offset, committed in the batch's turn on the sink topic's lane (Kafka/Transactions.ts). A
 * crash between the two leaves MongoDB written and the transaction never committed: the batch is
 * read again, MongoDB rewritten with the same documents, and read_committed readers never see
 * the aborted messages.
 */
import { Clock, Effect } from "effect"
import type { KafkaMessage } from "kafkajs"
import type { Batch, BatchAbandoned } from "../Kafka/KafkaSource.js"
import type { ProducerShape } from "../Kafka/Producer.js"
import type { TransactionsShape } from "../Kafka/Transactions.js"
import type { Delivery, DeliveryParts } from "./Delivery.js"
import type { SinkRun, WriteScope } from "./Writes.js"

/** The messages at or after `committed` (an offset the group has committed; -1 for none). */
export const keepFrom = (
  messages: ReadonlyArray<KafkaMessage>,
  committed: bigint,
): ReadonlyArray<KafkaMessage> =>
  committed < 0n ? messages : messages.filter((m) => BigInt(m.offset) >= committed)

/** Each sink's part of a batch that had nothing left to write. */
const nothingWritten = (sinks: number): ReadonlyArray<SinkRun> =>
  Array.from({ length: sinks }, () => ({ written: 0, rejected: [], attempts: 0, durationMs: 0 }))

export const exactlyOnce = (parts: DeliveryParts, tx: TransactionsShape): Delivery => {
  // The group generation in which each partition's producer last fenced the others.
  const fencedIn = new Map<number, number>()
  // What the group had committed for a batch's partition when its messages were chosen.
  const committedFor = new WeakMap<Batch, bigint>()
  const nextOf = (batch: Batch) => BigInt(batch.lastOffset) + 1n
  /** Everything of the batch was committed already, by the partition's earlier owner: nothing to send. */
  const done = (batch: Batch) => (committedFor.get(batch) ?? -1n) >= nextOf(batch)

  /**
   * `work` sends through the partition's transaction, then the batch's next offset goes in and
   * the transaction commits, in the batch's turn on the sink topic's lane, and only if every batch
   * before it in the partition was committed (one given up stops the ones after it). Retried as a
   * whole while the failure is transient; before another try after a `work` that had finished,
   * the partition is fenced anew and its committed offset read, so that a commit whose answer was
   * lost is recognised, not made twice.
   */
  const inTransaction = <A>(
    batch: Batch,
    scope: WriteScope,
    work: (via: ProducerShape) => Effect.Effect<A, BatchAbandoned>,
  ): Effect.Effect<A, BatchAbandoned> =>
    Effect.gen(function* () {
      const since = yield* Clock.currentTimeMillis
      const next = nextOf(batch)
      let sent: { readonly value: A } | undefined
      return yield* parts.writes.retrying("the Kafka transaction", scope, since, () =>
        Effect.gen(function* () {
          if (sent !== undefined) {
            const committed = yield* tx.fence(batch.partition)
            if (committed >= next) {
              yield* Effect.logWarning(
                "the outcome of the batch's transaction was not known: it was committed, and is not sent again",
              )
              return sent.value
            }
          }
          return yield* tx.transact(batch.partition, next.toString(), (via) =>
            Effect.tap(work(via), (value) =>
              Effect.sync(() => {
                sent = { value }
              }),
            ),
          )
        }),
      )
    }).pipe((effect) => parts.lanes.inTurn(batch, "kafka_sink", effect, { afterWritten: true }))

  return {
    /**
     * Once this instance's producer for the partition has fenced the earlier ones, the group's
     * offset is final: what lies below it was written, in a committed transaction, by the
     * partition's earlier owner, and is not worked on again. After the instance joined its group
     * again (the partition may have been elsewhere meanwhile), it fences again first.
     */
    unwritten: (batch, scope) =>
      Effect.gen(function* () {
        const since = yield* Clock.currentTimeMillis
        if (fencedIn.get(batch.partition) !== batch.generation) {
          yield* tx.forget(batch.partition)
          fencedIn.set(batch.partition, batch.generation)
        }
        const committed = yield* parts.writes.retrying(
          `the producer of partition ${batch.partition}`,
          scope,
          since,
          () => tx.fence(batch.partition),
        )
        committedFor.set(batch, committed)
        return keepFrom(batch.messages, committed)
      }),

    deliver: (admitted) =>
      Effect.gen(function* () {
        const { admission, classifyWith, scope } = admitted
        if (done(admitted.batch)) {
          // Its turns pass in order when it ends (Processor.handle); no offset lower than the group's goes in.
          return { ...classifyWith([]), written: {}, runs: nothingWritten(parts.plan.sinks.length) }
        }
        const runs: Array<SinkRun> = new Array(parts.plan.sinks.length)
        yield* Effect.all(
          [parts.writeKindInTurn(admitted, "mongodb_sink", runs), parts.saveWindows(admitted)],
          {
            concurrency: "unbounded",
            discard: true,
          },
        )
        const final = yield* inTransaction(admitted.batch, scope, (via) =>
          Effect.gen(function* () {
            // The transaction holds the batch's turn on the sink topic's lane already.
            yield* parts.writeKind(admitted, "kafka_sink", runs, via)
            const classified = classifyWith([...admission.refused, ...runs.flatMap((r) => r.rejected)])
            yield* parts.sendDeadLetters([...admitted.malformed, ...classified.deadLetters], scope, via)
            return classified
          }),
        )
        return { ...final, written: parts.writtenBy(runs), runs }
      }),

    deadLettersOnly: (batch, scope, deadLetters) =>
      done(batch)
        ? Effect.void
        : Effect.andThen(
            parts.lanes.inTurn(batch, "mongodb_sink", Effect.void),
            inTransaction(batch, scope, (via) => parts.sendDeadLetters(deadLetters, scope, via)),
          ),
  }
}
