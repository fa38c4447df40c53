/**
 * The limits checked before any sink sees a record, and the byte budgets of what is sent to
 * Kafka: shapes, keys, exact large integers, request splitting and dead letters cut to fit;
 * admission over two sinks that read different versions of a record.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import type { KafkaMessage, Message } from "kafkajs"
import { BSON } from "mongodb"
import { type JsonObject, keyOf, makeRecord, type PipelineRecord } from "../../src/Domain/Record.js"
import { shapeProblem } from "../../src/Domain/Shape.js"
import { encodedSize, encodedSizeBound } from "../../src/Kafka/MessageSize.js"
import { requestsOf } from "../../src/Kafka/Producer.js"
import { makeAdmission } from "../../src/Pipeline/Admission.js"
import type { ParsedBatch } from "../../src/Pipeline/Batch.js"
import { deadLetterMessage, header, sinkMessage, sourceHeaders } from "../../src/Pipeline/Messages.js"
import { parseExact } from "../../src/Pipeline/Parse.js"
import type { Sink, SinkStage } from "../../src/Pipeline/Sinks.js"

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

describe("admission: what the two sinks would store differently", () => {
  // The premise: each encoder takes these values, and they store different things.
  it("the sinks' encoders really disagree about Infinity and an unpaired surrogate", () => {
    const stored = (value: JsonObject) => BSON.deserialize(BSON.serialize(value))
    assert.strictEqual(stored({ n: Infinity }).n, Infinity)
    assert.strictEqual(JSON.stringify({ n: Infinity }), '{"n":null}')
    assert.strictEqual(stored({ s: "\ud800" }).s, "\ufffd")
    assert.strictEqual(JSON.stringify({ s: "\ud800" }), '{"s":"\\ud800"}')
  })

  const sink = (name: string, stage: SinkStage): Sink<never> => ({
    name,
    stage,
    refuses: () => undefined,
    write: () => Effect.die("not written here"),
  })
  const record = (offset: number, value: JsonObject): PipelineRecord => makeRecord(String(offset), value)
  /**
   * MongoDB reads the records as they came; the sink topic a projection of them (`slim`, what
   * a `project` task would give), so each sink may not read a field the other one does.
   */
  const admit = (rows: ReadonlyArray<readonly [JsonObject, JsonObject]>) => {
    const full = rows.map(([value], i) => record(i, value))
    const slim = rows.map(([, value], i) => record(i, value))
    const batch: ParsedBatch = { origin: { correlationId: "c", topic: "t", partition: 0 }, records: full }
    const admission = makeAdmission(
      [sink("mongodb", "mongodb_sink"), sink("kafka", "kafka_sink")],
      ["id"],
      { maxNestingDepth: 100, maxKeyBytes: 1024 },
      [],
      (name) => (name === "mongodb" ? full : slim),
    )(batch, () => [])
    const keys = (name: string) => admission.admitted.get(name)!.map((k) => k.key)
    return { admission, keys }
  }

  const { admission, keys } = admit([
    [{ id: "ok", n: 1 }, { id: "ok" }],
    // In a field only MongoDB reads: refused for both, at MongoDB's stage.
    [{ id: "extra", extra: Infinity }, { id: "extra" }],
    // In a field only the sink topic reads: refused for both, at the sink topic's stage.
    [{ id: "slim-only" }, { id: "slim-only", tags: ["a", -Infinity] }],
    // Where both read it: the first sink's stage.
    [
      { id: "both", s: "\ud800" },
      { id: "both", s: "\ud800" },
    ],
    [{ id: "name", tags: [{ "\udc00": 1 }] }, { id: "name" }],
    [
      { id: "emoji", s: "😀", "😀": "\ud83d\ude00" },
      { id: "emoji", s: "😀" },
    ],
    // A field name only MongoDB refuses, beside a number neither sink can store alike.
    [{ id: "dollar" }, { id: "dollar", $x: 1, n: Infinity }],
    // A field name only MongoDB refuses, in what the sink topic alone reads: no problem there.
    [{ id: "dollar-slim" }, { id: "dollar-slim", $x: 1 }],
  ])

  it("admits a record to both sinks or to neither", () => {
    assert.deepStrictEqual(keys("mongodb"), ["ok", "emoji", "dollar-slim"])
    assert.deepStrictEqual(keys("kafka"), ["ok", "emoji", "dollar-slim"])
  })

  it("refuses each record once, with the stage of the first sink that cannot take it and the reason", () => {
    assert.deepStrictEqual(
      admission.refused.map((r) => [r.record.offset, r.stage, r.reason.task, r.reason.rule, r.reason.field]),
      [
        ["1", "mongodb_sink", "mongodb", "number", "extra"],
        ["2", "kafka_sink", "kafka", "number", "tags[1]"],
        ["3", "mongodb_sink", "mongodb", "text", "s"],
        ["4", "mongodb_sink", "mongodb", "text", 'tags[0]."\\udc00"'],
        ["6", "kafka_sink", "kafka", "number", "n"],
      ],
    )
    assert.include(admission.refused[1]!.reason.message, "(it overflows to -Infinity)")
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

  it("finds such an integer however deep it is, and leaves long digit runs in strings as they are", () => {
    assert.deepStrictEqual(parseExact('{"id": "evt-00000001000000000000", "n": 1e3, "x": {"y": [2, 3]}}'), {
      id: "evt-00000001000000000000",
      n: 1000,
      x: { y: [2, 3] },
    })
    assert.deepStrictEqual(
      parseExact('{"id": "evt-00000001000000000000", "x": {"y": [{"z": -12345678901234567891}]}}'),
      { id: "evt-00000001000000000000", x: { y: [{ z: "-12345678901234567891" }] } },
    )
    assert.deepStrictEqual(parseExact("[1, 12345678901234567891]"), [1, "12345678901234567891"])
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

  it("bounds a message's size from its lengths, never below the size counted in bytes", () => {
    const texts = ["", "ascii", "é ü ß", "€ 中文", "😀 emoji", "\uD800 lone"]
    for (const text of texts) {
      const messages: ReadonlyArray<Message> = [
        { key: text, value: text },
        { key: null, value: null, headers: { [text]: text, b: [Buffer.from(text), text], c: undefined } },
        { key: Buffer.from(text), value: Buffer.from(text), headers: { n: Buffer.from(text) } },
      ]
      for (const m of messages) assert.isAtLeast(encodedSizeBound(m), encodedSize(m))
    }
  })

  it("sends a batch that fits by its bound as one request, without counting bytes", () => {
    const messages = Array.from({ length: 50 }, (_, i) => ({ key: `k${i}`, value: "é".repeat(5) }))
    const requests = requestsOf(messages, 100_000)
    assert.strictEqual(requests.length, 1)
    assert.deepStrictEqual(requests[0], messages)
    assert.notStrictEqual(requests[0], messages)
    assert.deepStrictEqual(requestsOf([], 1000), [])
  })

  it("names the source headers as `header` does, after the source message's own", () => {
    const origin = { correlationId: "c", topic: "src", partition: 3 }
    assert.deepStrictEqual(sourceHeaders(origin, "7"), {
      [header.correlationId]: "c",
      [header.sourceTopic]: "src",
      [header.sourcePartition]: "3",
      [header.sourceOffset]: "7",
    })
    const message = sinkMessage(origin, "k", "7", { a: 1 }, { x: "y", [header.sourceOffset]: "old" })
    assert.deepStrictEqual(message.headers, { x: "y", ...sourceHeaders(origin, "7") })
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
