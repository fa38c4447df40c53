/**
 * The order of writes within a partition: batches processed several at a time still write each
 * sink kind in offset order, whichever is ready first; the lanes of the two kinds are
 * independent; a batch that is done passes the turns it did not take in order, and one given
 * up passes them at once.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Deferred, Effect, Exit, Fiber } from "effect"
import { type Batch, BatchAbandoned } from "../../src/Kafka/KafkaSource.js"
import { WriteLanes } from "../../src/Pipeline/Lanes.js"

const chain = (n: number): ReadonlyArray<Batch> => {
  const batches: Batch[] = []
  for (let i = 0; i < n; i++) {
    batches.push({
      topic: "t",
      partition: 0,
      messages: [],
      firstOffset: String(i),
      lastOffset: String(i),
      highWatermark: "0",
      sequence: i + 1,
      afterSettled: i === 0,
      generation: 1,
    })
  }
  return batches
}

describe("write lanes", () => {
  it.effect("a later batch ready first still writes after the earlier ones, per sink", () =>
    Effect.gen(function* () {
      const lanes = new WriteLanes()
      const [a, b, c] = chain(3) as [Batch, Batch, Batch]
      const order: string[] = []
      const write = (name: string) => Effect.sync(() => void order.push(name))
      const gateA = yield* Deferred.make<void>()
      // c and b ask first; a is held back.
      const fc = yield* Effect.forkChild(lanes.inTurn(c, "mongodb_sink", write("c")))
      const fb = yield* Effect.forkChild(lanes.inTurn(b, "mongodb_sink", write("b")))
      const fa = yield* Effect.forkChild(
        lanes.inTurn(a, "mongodb_sink", Effect.andThen(Deferred.await(gateA), write("a"))),
      )
      // The other sink's lane does not wait for this one.
      yield* lanes.inTurn(a, "kafka_sink", write("a-kafka"))
      yield* Effect.yieldNow
      assert.deepStrictEqual(order, ["a-kafka"])
      yield* Deferred.succeed(gateA, undefined)
      yield* Fiber.join(fa)
      yield* Fiber.join(fb)
      yield* Fiber.join(fc)
      assert.deepStrictEqual(order, ["a-kafka", "a", "b", "c"])
    }),
  )

  it.effect("a batch done without writes of a kind passes that turn only after the batch before it", () =>
    Effect.gen(function* () {
      const lanes = new WriteLanes()
      const [a, b, c] = chain(3) as [Batch, Batch, Batch]
      const order: string[] = []
      const gateA = yield* Deferred.make<void>()
      const fa = yield* Effect.forkChild(
        lanes.inTurn(
          a,
          "mongodb_sink",
          Effect.andThen(
            Deferred.await(gateA),
            Effect.sync(() => void order.push("a")),
          ),
        ),
      )
      yield* lanes.inTurn(a, "kafka_sink", Effect.void)
      // b wrote nothing (every record went to the dead-letter topic), c is ready.
      const fb = yield* Effect.forkChild(lanes.releaseInTurn(b))
      const fc = yield* Effect.forkChild(
        lanes.inTurn(
          c,
          "mongodb_sink",
          Effect.sync(() => void order.push("c")),
        ),
      )
      yield* Effect.yieldNow
      yield* Effect.yieldNow
      assert.deepStrictEqual(order, [])
      yield* Deferred.succeed(gateA, undefined)
      yield* Fiber.join(fa)
      yield* Fiber.join(fb)
      yield* Fiber.join(fc)
      assert.deepStrictEqual(order, ["a", "c"])
    }),
  )

  it.effect("a batch that fails or is given up passes its turns on", () =>
    Effect.gen(function* () {
      const lanes = new WriteLanes()
      const [a, b, c] = chain(3) as [Batch, Batch, Batch]
      const order: string[] = []
      const failed = yield* Effect.exit(lanes.inTurn(a, "mongodb_sink", Effect.fail("refused")))
      assert.isTrue(failed._tag === "Failure")
      yield* lanes.release(b)
      yield* lanes.inTurn(
        c,
        "mongodb_sink",
        Effect.sync(() => void order.push("c")),
      )
      yield* lanes.inTurn(
        c,
        "kafka_sink",
        Effect.sync(() => void order.push("c-kafka")),
      )
      assert.deepStrictEqual(order, ["c", "c-kafka"])
    }),
  )

  it.effect(
    "a turn that needs the batches before it written fails when one was given up, and so do the ones after it",
    () =>
      Effect.gen(function* () {
        const lanes = new WriteLanes()
        const [a, b, c, d] = chain(4) as [Batch, Batch, Batch, Batch]
        const committed: string[] = []
        const commit = (batch: Batch) =>
          lanes.inTurn(
            batch,
            "kafka_sink",
            Effect.sync(() => void committed.push(batch.firstOffset)),
            {
              afterWritten: true,
            },
          )
        yield* commit(a)
        yield* lanes.release(b)
        const exitC = yield* Effect.exit(commit(c))
        const exitD = yield* Effect.exit(commit(d))
        assert.deepStrictEqual(committed, ["0"])
        assert.isTrue(Exit.isFailure(exitC) && Cause.squash(exitC.cause) instanceof BatchAbandoned)
        assert.isTrue(Exit.isFailure(exitD) && Cause.squash(exitD.cause) instanceof BatchAbandoned)
        // Without the requirement, the order is kept and nothing fails (c, given up, passes its turns).
        yield* lanes.release(c)
        const written: string[] = []
        yield* lanes.inTurn(
          d,
          "mongodb_sink",
          Effect.sync(() => void written.push("d")),
        )
        assert.deepStrictEqual(written, ["d"])
      }),
  )

  it.effect("the first batch of a fetch waits for no batch of the fetch before it", () =>
    Effect.gen(function* () {
      const lanes = new WriteLanes()
      const [a, b] = chain(2) as [Batch, Batch]
      yield* lanes.release(a)
      // b is read again in the next fetch: its first batch, with a sequence number of its own.
      const again: Batch = { ...b, sequence: 3, afterSettled: true }
      const committed: string[] = []
      yield* lanes.inTurn(
        again,
        "kafka_sink",
        Effect.sync(() => void committed.push("again")),
        {
          afterWritten: true,
        },
      )
      assert.deepStrictEqual(committed, ["again"])
    }),
  )
})
