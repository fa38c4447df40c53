/** How a fetch is cut into batches: by count and by bytes, in order, a large message alone. */
import { assert, describe, it } from "@effect/vitest"
import type { KafkaMessage } from "kafkajs"
import { batchesOf } from "../../src/Kafka/KafkaSource.js"

const message = (offset: number, bytes: number): KafkaMessage => ({
  key: null,
  value: Buffer.alloc(bytes),
  timestamp: "0",
  attributes: 0,
  offset: String(offset),
  headers: {},
})

const offsets = (batches: ReadonlyArray<ReadonlyArray<KafkaMessage>>) =>
  batches.map((c) => c.map((m) => Number(m.offset)))

describe("batchesOf", () => {
  it("cuts by count", () => {
    const messages = Array.from({ length: 7 }, (_, i) => message(i, 10))
    assert.deepStrictEqual(offsets(batchesOf(messages, 3)), [[0, 1, 2], [3, 4, 5], [6]])
  })

  it("cuts by bytes, and a message larger than the budget goes alone", () => {
    const messages = [message(0, 40), message(1, 40), message(2, 40), message(3, 500), message(4, 10)]
    assert.deepStrictEqual(offsets(batchesOf(messages, 100, 100)), [[0, 1], [2], [3], [4]])
  })

  it("keeps every message, in order", () => {
    const messages = Array.from({ length: 1000 }, (_, i) => message(i, (i * 37) % 300))
    const batches = batchesOf(messages, 50, 2_000)
    assert.deepStrictEqual(
      offsets(batches).flat(),
      messages.map((m) => Number(m.offset)),
    )
    for (const batch of batches) {
      assert.isAtMost(batch.length, 50)
      const bytes = batch.reduce((n, m) => n + (m.value?.length ?? 0), 0)
      assert.isTrue(bytes <= 2_000 || batch.length === 1)
    }
  })
})
