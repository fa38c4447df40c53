import { assert, describe, it } from "@effect/vitest"
import type { JsonObject } from "../../src/Domain/Record.js"
import { FieldMappingSettings, make } from "../../src/Tasks/FieldMapping.js"
import { batch, invalidRecord, longString, settingsOf, snapshot } from "./support.js"

const settings = settingsOf(FieldMappingSettings)

const contract = settings({
  dropUnmapped: true,
  keep: ["event_id", "status"],
  mappings: [
    { from: "customer.email", to: "email" },
    { from: "order.amount", to: "amount" },
    { from: "is_priority", to: "priority", default: false },
  ],
})

const moves = settings({
  mappings: [
    { from: "customer.email", to: "email" },
    { from: "a", to: "nested.deep.a" },
  ],
})

interface Case {
  readonly name: string
  readonly mapping: ReturnType<typeof settings>
  readonly input: JsonObject
  readonly output: JsonObject
  readonly invalid?: ReadonlyArray<string>
}

const cases: ReadonlyArray<Case> = [
  {
    name: "moves nested fields up and drops the rest",
    mapping: contract,
    input: {
      event_id: "e1",
      status: "paid",
      customer: { email: "a@b.co", phone: "1" },
      order: { amount: "1.5" },
      is_priority: "1",
      junk: 1,
    },
    output: { event_id: "e1", status: "paid", email: "a@b.co", amount: "1.5", priority: "1" },
  },
  {
    name: "fills a default for a missing field",
    mapping: contract,
    input: { event_id: "e1", customer: { email: "x" }, order: { amount: 1 } },
    output: { event_id: "e1", email: "x", amount: 1, priority: false },
  },
  {
    name: "fills a default for a null field",
    mapping: contract,
    input: { event_id: "e1", is_priority: null },
    output: { event_id: "e1", priority: false },
  },
  {
    name: "leaves a missing source without default unset",
    mapping: contract,
    input: { event_id: "e1" },
    output: { event_id: "e1", priority: false },
  },
  {
    name: "keeps null as null",
    mapping: contract,
    input: { event_id: null, customer: { email: null } },
    output: { event_id: null, email: null, priority: false },
  },
  {
    name: "reads nothing through an array where an object is expected",
    mapping: contract,
    input: { event_id: "e1", customer: [{ email: "x" }], order: "not an object" },
    output: { event_id: "e1", priority: false },
  },
  {
    name: "moves a whole nested object and unicode values unchanged",
    mapping: contract,
    input: { event_id: "é🎉", customer: { email: { nested: ["ü", 1] } } },
    output: { event_id: "é🎉", email: { nested: ["ü", 1] }, priority: false },
  },
  {
    name: "keeps unmapped fields and removes objects emptied by the move",
    mapping: moves,
    input: { customer: { email: "x" }, a: 1, other: true },
    output: { email: "x", nested: { deep: { a: 1 } }, other: true },
  },
  {
    name: "keeps what is left of a partly moved object",
    mapping: moves,
    input: { customer: { email: "x", phone: "2" } },
    output: { customer: { phone: "2" }, email: "x" },
  },
  {
    name: "carries very long strings over",
    mapping: moves,
    input: { a: longString(1_000_000) },
    output: { nested: { deep: { a: longString(1_000_000) } } },
  },
  {
    name: "swaps two fields",
    mapping: settings({
      mappings: [
        { from: "a", to: "b" },
        { from: "b", to: "a" },
      ],
    }),
    input: { a: 1, b: 2 },
    output: { a: 2, b: 1 },
  },
  {
    name: "invalidates when a required field is missing",
    mapping: settings({ mappings: [{ from: "customer.email", to: "email", required: true }] }),
    input: { customer: {} },
    output: { customer: {} },
    invalid: ["Required"],
  },
  {
    name: "invalidates rather than overwrite a scalar in the way of a target",
    mapping: settings({ mappings: [{ from: "a", to: "b.c" }] }),
    input: { a: 1, b: "scalar" },
    output: { b: "scalar" },
    invalid: ["PathConflict"],
  },
]

describe("FieldMapping", () => {
  it.each(cases)("$name", ({ mapping, input, output, invalid }) => {
    const records = batch(input)
    const before = snapshot(records)
    const result = make(mapping, { name: "mapping" })(records)
    const record = result.records[0]!
    assert.deepStrictEqual(record.value, output)
    if (invalid === undefined) {
      assert.strictEqual(record.status, "valid")
    } else {
      assert.strictEqual(record.status, "invalid")
      assert.deepStrictEqual(
        record.reasons.map((reason) => reason.rule),
        invalid,
      )
      assert.isTrue(record.reasons.every((reason) => reason.task === "mapping"))
    }
    assert.deepStrictEqual(records, before, "the input batch is left as it was")
  })

  it("handles an empty batch", () => {
    const result = make(contract)([])
    assert.deepStrictEqual(result.records, [])
    assert.strictEqual(result.stats.records, 0)
  })

  it("passes a batch of invalid records through untouched", () => {
    const records = [invalidRecord("0", { customer: { email: "x" } }), invalidRecord("1", {})]
    const result = make(contract)(records)
    assert.strictEqual(result.records[0], records[0])
    assert.strictEqual(result.records[1], records[1])
    assert.strictEqual(result.stats.skipped, 2)
    assert.strictEqual(result.stats.mapped, 0)
  })

  it("counts mapped records, defaults and missing fields", () => {
    const result = make(contract)(batch({ event_id: "1", customer: { email: "x" } }, { event_id: "2" }))
    assert.deepStrictEqual(result.stats, {
      records: 2,
      mapped: 2,
      defaulted: 2,
      missing: 3,
      invalidated: 0,
      skipped: 0,
    })
  })

  it("gives every record its own copy of an object default", () => {
    const transform = make(settings({ mappings: [{ from: "tags", default: [] }] }))
    const [a, b] = transform(batch({}, {})).records
    assert.deepStrictEqual(a!.value.tags, [])
    assert.notStrictEqual(a!.value.tags, b!.value.tags)
  })

  it("refuses paths that would reach the prototype", () => {
    assert.throws(() => settings({ mappings: [{ from: "__proto__.x", to: "y" }] }))
    assert.throws(() => settings({ mappings: [{ from: "a..b" }] }))
  })
})
