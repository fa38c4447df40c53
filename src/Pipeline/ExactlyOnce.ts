/**
 * Delivery exactly once on the Kafka side (KAFKA__DELIVERY=exactly_once): MongoDB first, in the
 * batch's turn; then one transaction holds the sink messages, every dead letter and the batch's
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

export const exactlyOnce = (parts: DeliveryParts, tx: TransactionsShape): Delivery => {
  /**
   * `work` sends through the partition's transaction, then the batch's next offset goes in and
   * the transaction commits, in the batch's turn on the sink topic's lane; retried as a whole
   * while the failure is transient.
   */
  const inTransaction = <A>(
    batch: Batch,
    scope: WriteScope,
    work: (via: ProducerShape) => Effect.Effect<A, BatchAbandoned>,
  ): Effect.Effect<A, BatchAbandoned> =>
    Effect.gen(function* () {
      const since = yield* Clock.currentTimeMillis
      const next = (BigInt(batch.lastOffset) + 1n).toString()
      return yield* parts.writes.retrying("the Kafka transaction", scope, since, () =>
        tx.transact(batch.partition, next, work),
      )
    }).pipe((effect) => parts.lanes.inTurn(batch, "kafka_sink", effect))

  return {
    /**
     * Once this instance's producer for the partition has fenced the earlier ones, the group's
     * offset is final: what lies below it was written, in a committed transaction, by the
     * partition's earlier owner, and is not worked on again.
     */
    unwritten: (batch, scope) =>
      Effect.gen(function* () {
        const since = yield* Clock.currentTimeMillis
        const committed = yield* parts.writes.retrying(
          `the producer of partition ${batch.partition}`,
          scope,
          since,
          () => tx.fence(batch.partition),
        )
        return keepFrom(batch.messages, committed)
      }),

    deliver: (admitted) =>
      Effect.gen(function* () {
        const { admission, classifyWith, scope } = admitted
        const runs: Array<SinkRun> = new Array(parts.plan.sinks.length)
        yield* parts.writeKindInTurn(admitted, "mongodb_sink", runs)
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
      Effect.andThen(
        parts.lanes.inTurn(batch, "mongodb_sink", Effect.void),
        inTransaction(batch, scope, (via) => parts.sendDeadLetters(deadLetters, scope, via)),
      ),
  }
}
