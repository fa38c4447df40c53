/**
 * The limits checked before any sink sees a record, and the byte budgets of what is sent to
 * Kafka: shapes, keys, exact large integers, request splitting and dead letters cut to fit.
 */
import { assert, describe, it } from "@effect/vitest"
import type { KafkaMessage, Message } from "kafkajs"
import { keyOf } from "../../src/Domain/Record.js"
import { shapeProblem } from "../../src/Domain/Shape.js"
import { deadLetterMessage, encodedSize } from "../../src/Kafka/Messages.js"
import { requestsOf } from "../../src/Kafka/Producer.js"
import { parseExact } from "../../src/Pipeline/Parse.js"

const nested = (levels: number): unknown => JSON.parse(`${"[".repeat(levels)}${"]".repeat(levels)}`)

describe("record shape", () => {
  it("counts the top-level object as level 1 and stops at the limit, however deep the value", () => {
    assert.isUndefined(shapeProblem({ a: nested(99) } as never, 100))
    assert.strictEqual(shapeProblem({ a: nested(100) } as never, 100)?.rule, "depth")
    assert.strictEqual(shapeProblem({ a: nested(50_000) } as never, 100)?.rule, "depth")
  })
  it("finds field names MongoDB refuses, at any depth", () => {
    assert.include(shapeProblem({ a: [{ b: { $x: 1 } }] }, 100)?.message ?? "", '"$x"')
    assert.include(shapeProblem({ a: [{ "b\u0000c": 1 }] }, 100)?.message ?? "", "NUL")
    assert.isUndefined(shapeProblem({ a: [{ b$: 1, "c.d": 2 }] }, 100))
  })
})

describe("record keys", () => {
  const table: ReadonlyArray<readonly [string, ReadonlyArray<unknown>, string | undefined]> = [
    ["a string", ["k1"], "k1"],
    ["a number", [42], "42"],
    ["a large id kept as text", ["12345678901234567891"], "12345678901234567891"],
    ["several fields", ["a", 1], '["a",1]'],
    ["missing", [undefined], undefined],
    ["null", [null], undefined],
    ["empty", [""], undefined],
    ["an object", [{ a: 1 }], undefined],
    ["an array", [[1]], undefined],
    ["a boolean", [true], undefined],
    ["one of several fields missing", ["a", null], undefined],
  ]
  for (const [what, values, expected] of table) {
    it(`${what}: ${expected ?? "no key"}`, () => {
      const key = keyOf(values as never)
      assert.strictEqual(typeof key === "string" ? key : undefined, expected)
    })
  }
  it("is no key beyond the byte limit, counted in UTF-8", () => {
    assert.strictEqual(keyOf(["ü".repeat(4)], 8), "üüüü")
    assert.notStrictEqual(typeof keyOf(["ü".repeat(5)], 8), "string")
  })
})

describe("parsing", () => {
  it("keeps integers beyond 2^53 as their exact text, and leaves every other number alone", () => {
    const value = parseExact(
      '{"a": 12345678901234567891, "b": 12345678901234567892, "c": 1.5, "d": 9007199254740991, "e": [1e300]}',
    )
    assert.deepStrictEqual(value, {
      a: "12345678901234567891",
      b: "12345678901234567892",
      c: 1.5,
      d: 9007199254740991,
      e: ["1e300"],
    })
  })
})

describe("Kafka byte budgets", () => {
  const message = (bytes: number): Message => ({ key: "k", value: Buffer.alloc(bytes) })
  it("cuts a send into requests within the budget, in order, a larger message alone", () => {
    const messages = [message(400), message(400), message(400), message(2000), message(10)]
    const requests = requestsOf(messages, 1000)
    assert.deepStrictEqual(
      requests.map((r) => r.map((m) => (m.value as Buffer).length)),
      [[400, 400], [400], [2000], [10]],
    )
    for (const r of requests)
      if (r.length > 1)
        assert.isAtMost(
          r.map(encodedSize).reduce((a, b) => a + b),
          1000,
        )
  })

  it("cuts a dead letter's value to fit the dead-letter topic and says how long it was", () => {
    const original: KafkaMessage = {
      key: Buffer.from("k"),
      value: Buffer.alloc(50_000, 120),
      timestamp: "0",
      attributes: 0,
      offset: "7",
      headers: { "x-trace": "t" },
    }
    const origin = { correlationId: "c", topic: "src", partition: 3 }
    const reasons = [{ task: "kafka", rule: "size", message: "too large" }]
    const whole = deadLetterMessage(origin, original, "kafka_sink", reasons, new Date(0))
    assert.strictEqual((whole.value as Buffer).length, 50_000)
    const cut = deadLetterMessage(origin, original, "kafka_sink", reasons, new Date(0), 10_000)
    assert.isAtMost(encodedSize(cut), 10_000)
    assert.strictEqual(cut.headers?.["pipeline.error.truncated_from_bytes"], "50000")
    assert.strictEqual(cut.headers?.["pipeline.source.offset"], "7")
    assert.strictEqual(cut.headers?.["x-trace"], "t")
    assert.isTrue(original.value!.subarray(0, (cut.value as Buffer).length).equals(cut.value as Buffer))
  })
})
