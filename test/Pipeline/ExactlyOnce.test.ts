/**
 * The logic of exactly-once that needs no broker: after this instance's producer for a
 * partition fenced the earlier ones, what lies below the group's offset was written by the
 * partition's earlier owner and is not worked on again; a fenced write gives the batch up
 * instead of retrying it or blaming a record.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import type { KafkaMessage } from "kafkajs"
import { decodeSettings } from "../../src/Config/AppConfig.js"
import { KafkaProduceError } from "../../src/Kafka/Errors.js"
import { BatchAbandoned } from "../../src/Kafka/KafkaSource.js"
import type { ProducerShape } from "../../src/Kafka/Producer.js"
import { keepFrom } from "../../src/Pipeline/ExactlyOnce.js"
import { PartitionStalls } from "../../src/Pipeline/Stalls.js"
import { makeWrites } from "../../src/Pipeline/Writes.js"
import * as InMemory from "../support/InMemory.js"

const at = (offset: number): KafkaMessage => ({
  key: null,
  value: Buffer.from("{}"),
  timestamp: "0",
  attributes: 0,
  offset: String(offset),
  headers: {},
})

describe("exactly-once", () => {
  it("keeps the messages at or after the offset the earlier owner committed", () => {
    const messages = [10, 11, 12, 13].map(at)
    assert.deepStrictEqual(
      keepFrom(messages, -1n).map((m) => m.offset),
      ["10", "11", "12", "13"],
    )
    assert.deepStrictEqual(
      keepFrom(messages, 12n).map((m) => m.offset),
      ["12", "13"],
    )
    assert.deepStrictEqual(keepFrom(messages, 14n), [])
    // Offsets past 2^53 compare exactly.
    const far = [at(0), { ...at(0), offset: "9007199254740993" }]
    assert.deepStrictEqual(
      keepFrom(far, 9007199254740993n).map((m) => m.offset),
      ["9007199254740993"],
    )
  })

  it.effect("gives a batch up when its write is fenced, without retrying or stalling", () =>
    Effect.gen(function* () {
      const settings = yield* decodeSettings(InMemory.testEnv)
      let sends = 0
      const fenced: ProducerShape = {
        maxMessageBytes: () => 1_048_588,
        send: (topic, messages) =>
          Effect.suspend(() => {
            sends++
            return Effect.fail(
              new KafkaProduceError({
                topic,
                messages: messages.length,
                kind: "fenced",
                cause: "INVALID_PRODUCER_EPOCH",
              }),
            )
          }),
      }
      const stalls = new PartitionStalls()
      const writes = makeWrites({
        pipeline: settings.pipeline,
        producer: fenced,
        dlqTopic: "orders.dlq",
        stalls,
      })
      const scope = { origin: { correlationId: "c", topic: "orders", partition: 0 }, offsets: "0-1" }
      const exit = yield* Effect.exit(
        writes.sendDeadLetters(
          [
            { key: null, value: "a" },
            { key: null, value: "b" },
          ],
          scope,
          0,
        ),
      )
      assert.isTrue(Exit.isFailure(exit) && Exit.findErrorOption(exit)._tag === "Some")
      if (Exit.isFailure(exit)) {
        const error = Exit.findErrorOption(exit)
        assert.isTrue(error._tag === "Some" && error.value instanceof BatchAbandoned)
      }
      assert.strictEqual(sends, 1, "not retried, not split")
      assert.deepStrictEqual(stalls.current, [], "not a stall")
    }),
  )
})
