/**
 * The order of writes within a partition: batches processed several at a time still write each
 * sink kind in offset order, whichever is ready first; the lanes of the two kinds are
 * independent; a batch that is done passes the turns it did not take in order, and one given
 * up passes them at once.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber } from "effect"
import type { Batch } from "../../src/Kafka/KafkaSource.js"
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
})
