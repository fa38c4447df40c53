import { assert, describe, it } from "@effect/vitest"
import { type JsonObject, makeRecord, type PipelineRecord } from "../../src/Domain/Record.js"
import { defaultRecordOptions, generate } from "../../src/Generator/Records.js"
import { batch, defaultTransforms, runChain } from "./support.js"

const valid: JsonObject = {
  event_id: "evt-0001",
  customer: {
    first_name: "  alice ",
    last_name: "SMITH",
    email: " Alice.Smith@Example.COM",
    phone: "(415) 555-0134",
    country: "us",
  },
  order: { amount: "123.45", currency: "usd", quantity: "3" },
  status: "pending",
  created_at: "2026-11-27T10:00:00+02:00",
  is_priority: "true",
  tags: ["gift", "express"],
}

const withChange = (change: (record: JsonObject & { customer: JsonObject; order: JsonObject }) => void) => {
  const record = structuredClone(valid) as JsonObject & { customer: JsonObject; order: JsonObject }
  change(record)
  return record
}

describe("the shipped pipeline", () => {
  it("turns a contract record into the clean shape", () => {
    const [record] = runChain(defaultTransforms(), batch(valid))
    assert.strictEqual(record!.status, "valid")
    assert.strictEqual(record!.key, "evt-0001")
    assert.deepStrictEqual(record!.value, {
      event_id: "evt-0001",
      first_name: "Alice",
      last_name: "Smith",
      email: "alice.smith@example.com",
      phone: "+14155550134",
      country: "US",
      amount: 123.45,
      currency: "USD",
      quantity: 3,
      status: "pending",
      created_at: "2026-11-27T08:00:00.000Z",
      priority: true,
      tags: ["gift", "express"],
    })
  })

  const variants: ReadonlyArray<readonly [string, JsonObject]> = [
    [
      "GB phone, padded country",
      withChange((r) => Object.assign(r.customer, { phone: "+44 20 7946 0958", country: " de " })),
    ],
    ["dotted phone", withChange((r) => Object.assign(r.customer, { phone: "415.555.0134", country: "GB" }))],
    [
      "numbers as numbers",
      withChange((r) => Object.assign(r.order, { amount: 123.45, quantity: 3, currency: "EUR" })),
    ],
    ["space date", withChange((r) => Object.assign(r, { created_at: "2026-11-27 10:00:00" }))],
    ["epoch date", withChange((r) => Object.assign(r, { created_at: 1795000000000 }))],
    ["boolean priority", withChange((r) => Object.assign(r, { is_priority: false }))],
    ["priority 0", withChange((r) => Object.assign(r, { is_priority: "0" }))],
    [
      "no priority, no tags",
      withChange((r) => {
        delete r.is_priority
        delete r.tags
      }),
    ],
  ]
  it.each(variants)("passes a valid record: %s", (_name, value) => {
    const [record] = runChain(defaultTransforms(), batch(value))
    assert.deepStrictEqual(record!.reasons, [])
    assert.strictEqual(record!.status, "valid")
  })

  const defects: ReadonlyArray<readonly [string, JsonObject, string, string]> = [
    ["missing_required_field", withChange((r) => delete r.customer.email), "email", "NotNull"],
    ["missing_required_field", withChange((r) => delete r.event_id), "event_id", "NotNull"],
    ["missing_required_field", withChange((r) => delete r.order.amount), "amount", "NotNull"],
    ["missing_required_field", withChange((r) => delete r.created_at), "created_at", "NotNull"],
    ["missing_required_field", withChange((r) => delete r.customer.first_name), "first_name", "NotNull"],
    ["wrong_type", withChange((r) => Object.assign(r.order, { amount: "abc" })), "amount", "float"],
    ["wrong_type", withChange((r) => Object.assign(r.order, { quantity: "three" })), "quantity", "integer"],
    ["out_of_range", withChange((r) => Object.assign(r.order, { amount: -5 })), "amount", "Range"],
    ["out_of_range", withChange((r) => Object.assign(r.order, { quantity: 0 })), "quantity", "Range"],
    ["out_of_range", withChange((r) => Object.assign(r.order, { quantity: "5000" })), "quantity", "Range"],
    [
      "bad_pattern",
      withChange((r) => Object.assign(r.customer, { email: "not-an-email" })),
      "email",
      "Pattern",
    ],
    [
      "bad_date",
      withChange((r) => Object.assign(r, { created_at: "2026-13-45T99:00:00Z" })),
      "created_at",
      "timestamp",
    ],
    ["bad_date", withChange((r) => Object.assign(r, { created_at: "yesterday" })), "created_at", "timestamp"],
    ["bad_enum", withChange((r) => Object.assign(r, { status: "lost" })), "status", "OneOf"],
    ["bad_enum", withChange((r) => Object.assign(r.order, { currency: "XYZ" })), "currency", "OneOf"],
    ["bad phone", withChange((r) => Object.assign(r.customer, { phone: "call me" })), "phone", "phone_e164"],
    ["bad country", withChange((r) => Object.assign(r.customer, { country: "USA" })), "country", "Length"],
  ]
  it.each(defects)("catches %s on %s", (_defect, value, field, rule) => {
    const [record] = runChain(defaultTransforms(), batch(value))
    assert.strictEqual(record!.status, "invalid")
    assert.deepStrictEqual(
      record!.reasons.map((reason) => `${reason.field}:${reason.rule}`),
      [`${field}:${rule}`],
    )
  })

  it("survives hostile values in every field: deep nesting, huge strings, arrays, unicode", () => {
    let deep: JsonObject = {}
    for (let i = 0; i < 100_000; i++) deep = { d: deep }
    const huge = "é".repeat(5_000_000)
    const fields = ["event_id", "status", "created_at", "is_priority", "tags"]
    const hostile = [deep, huge, ["a", ["b"]], "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 ☃", { nested: { object: true } }, -0, 1e308, ""]
    const values = hostile.map(
      (value): JsonObject => ({
        ...Object.fromEntries(fields.map((field) => [field, value])),
        customer: { first_name: value, last_name: value, email: value, phone: value, country: value },
        order: { amount: value, currency: value, quantity: value },
      }),
    )
    const output = runChain(defaultTransforms(), batch(...values))
    assert.strictEqual(output.length, values.length)
    for (const record of output) {
      assert.strictEqual(record.status, "invalid")
      for (const reason of record.reasons) assert.isBelow(reason.message.length, 300)
    }
  })

  it("warns about tags that are not an array and keeps the record", () => {
    const [record] = runChain(
      defaultTransforms(),
      batch(withChange((r) => Object.assign(r, { tags: "gift" }))),
    )
    assert.strictEqual(record!.status, "valid")
    assert.deepStrictEqual(
      record!.warnings.map((warning) => `${warning.field}:${warning.rule}`),
      ["tags:Type"],
    )
  })

  it("agrees with the test-data generator on every record of a mixed stream", () => {
    const generated = [
      ...generate({ ...defaultRecordOptions, seed: 7, invalidRatio: 0.2, duplicateRatio: 0.05 }, 0, 5_000),
    ].filter((record) => !(record.value instanceof Uint8Array))
    const transforms = defaultTransforms(() => 0)
    const outputs: Array<PipelineRecord> = []
    // In batches of 100, as the runtime would hand them over.
    for (let start = 0; start < generated.length; start += 100) {
      const slice = generated.slice(start, start + 100)
      const input = slice.map((record) => makeRecord(String(record.index), record.value as JsonObject))
      outputs.push(...runChain(transforms, input))
    }
    const mismatches = generated.flatMap((record, index) => {
      const status = outputs[index]!.status
      const expected = record.kind === "valid" ? "valid" : record.kind
      return status === expected ? [] : [`${record.index} ${record.kind} ${record.defect ?? ""}: ${status}`]
    })
    assert.deepStrictEqual(mismatches, [])
    const kinds = new Set(generated.map((record) => record.kind))
    assert.isTrue(kinds.has("invalid") && kinds.has("duplicate") && kinds.has("valid"))
  })
})
