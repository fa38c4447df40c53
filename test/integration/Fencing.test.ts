/**
 * The fencing of KAFKA__DELIVERY=exactly_once against the real broker: two instances'
 * transaction layers for the same group and source partition (a partition that moved while its
 * old owner was still writing). The new owner's fence makes the old owner's open transaction
 * fail as `fenced`, its messages never reach a read_committed reader, and the new owner reads
 * the group's committed offset only after the fence.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Context, Deferred, Effect, Exit, Fiber, Layer } from "effect"
import { AppConfig } from "../../src/Config/AppConfig.js"
import { kindOf } from "../../src/Domain/ErrorKind.js"
import { KafkaAdmin } from "../../src/Kafka/KafkaAdmin.js"
import { KafkaClient } from "../../src/Kafka/KafkaClient.js"
import { KafkaProducer, type ProducerShape } from "../../src/Kafka/Producer.js"
import { KafkaTransactions } from "../../src/Kafka/Transactions.js"
import { createTopic, freshNames, readCommitted, serviceEnv } from "./support/Service.js"

describe("exactly-once fencing", () => {
  it.live(
    "a partition's new owner fences the old one: its open transaction fails as fenced and is never seen",
    () => {
      const names = freshNames("fence")
      const env = serviceEnv(names, { KAFKA__DELIVERY: "exactly_once" })
      // One instance's Kafka side: the transactions layer over its own client, admin and producer.
      const instance = KafkaTransactions.layer.pipe(
        Layer.provideMerge(KafkaProducer.layer),
        Layer.provideMerge(KafkaAdmin.layer),
        Layer.provideMerge(KafkaClient.layer),
        Layer.provide(AppConfig.layerFrom(env)),
        Layer.fresh,
      )
      const sendOne = (key: string) => (producer: ProducerShape) =>
        producer.send(names.sink, [{ key, value: JSON.stringify({ key }) }])
      return Effect.gen(function* () {
        yield* Effect.promise(() => createTopic(names.source, 3))
        yield* Effect.promise(() => createTopic(names.sink, 3))
        const oldTx = Context.get(yield* Layer.build(instance), KafkaTransactions)
        const nextTx = Context.get(yield* Layer.build(instance), KafkaTransactions)

        // The old owner commits a first batch (offsets 0-9), then opens a second one and waits.
        assert.strictEqual(yield* oldTx.fence(0), -1n)
        yield* oldTx.transact(0, "10", sendOne("first"))
        const sent = yield* Deferred.make<void>()
        const fenced = yield* Deferred.make<void>()
        const second = yield* Effect.forkChild(
          oldTx.transact(0, "20", (producer) =>
            sendOne("zombie")(producer).pipe(
              Effect.andThen(Deferred.succeed(sent, undefined)),
              Effect.andThen(Deferred.await(fenced)),
            ),
          ),
        )
        yield* Deferred.await(sent)
        // The new owner takes the partition: its fence finishes the old producer's open transaction
        // and it sees the offset the old owner committed.
        assert.strictEqual(yield* nextTx.fence(0), 10n)
        yield* Deferred.succeed(fenced, undefined)
        const exit = yield* Fiber.await(second)
        assert.isTrue(Exit.isFailure(exit), "the old owner's commit failed")
        if (Exit.isFailure(exit)) {
          const failures = exit.cause.reasons.filter(Cause.isFailReason).map((r) => kindOf(r.error))
          assert.deepStrictEqual(failures, ["fenced"], Cause.pretty(exit.cause))
        }
        // The new owner writes the batch again and commits it.
        yield* nextTx.transact(0, "20", sendOne("second"))
        const keys = (yield* Effect.promise(() => readCommitted(names.sink))).map((m) => m.key).sort()
        assert.deepStrictEqual(keys, ["first", "second"])
      }).pipe(Effect.scoped)
    },
    120_000,
  )
})
