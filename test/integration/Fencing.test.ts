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

  it.live(
    "a transaction the broker expires (the process held up past the transaction timeout) is reported as expired, never seen, and the next one goes in",
    () => {
      const names = freshNames("expire")
      // KAFKA__REQUEST_TIMEOUT_SECONDS=1 makes the producers' transaction timeout 24 s (four send
      // deadlines of six request timeouts) instead of 12 minutes, so the broker expires the
      // transaction within this test.
      const env = serviceEnv(names, { KAFKA__DELIVERY: "exactly_once", KAFKA__REQUEST_TIMEOUT_SECONDS: "1" })
      const instance = KafkaTransactions.layer.pipe(
        Layer.provideMerge(KafkaProducer.layer),
        Layer.provideMerge(KafkaAdmin.layer),
        Layer.provideMerge(KafkaClient.layer),
        Layer.provide(AppConfig.layerFrom(env)),
      )
      const sendOne = (key: string) => (producer: ProducerShape) =>
        producer.send(names.sink, [{ key, value: JSON.stringify({ key }) }])
      return Effect.gen(function* () {
        yield* Effect.promise(() => createTopic(names.source, 1))
        yield* Effect.promise(() => createTopic(names.sink, 1))
        const tx = Context.get(yield* Layer.build(instance), KafkaTransactions)
        assert.strictEqual(yield* tx.fence(0), -1n)
        // The transaction holds a message; then the whole process stands still (its event loop
        // blocked, as when it is stopped or starved) past the timeout and the broker's check.
        const exit = yield* Effect.exit(
          tx.transact(0, "10", (producer) =>
            sendOne("expired")(producer).pipe(
              Effect.andThen(
                Effect.sync(() => {
                  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 36_000)
                }),
              ),
            ),
          ),
        )
        assert.isTrue(Exit.isFailure(exit), "the expired transaction did not commit")
        if (Exit.isFailure(exit)) {
          const errors = exit.cause.reasons.filter(Cause.isFailReason).map((r) => r.error)
          assert.deepStrictEqual(
            errors.map((e) => kindOf(e)),
            ["fenced"],
            Cause.pretty(exit.cause),
          )
          assert.include(String((errors[0] as Error).message), "the broker expired the transaction")
        }
        // The partition's next transaction starts with a new producer and goes in.
        yield* tx.transact(0, "10", sendOne("after"))
        const keys = (yield* Effect.promise(() => readCommitted(names.sink))).map((m) => m.key).sort()
        assert.deepStrictEqual(keys, ["after"])
      }).pipe(Effect.scoped)
    },
    120_000,
  )
})
