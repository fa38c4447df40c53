import { assert, describe, it } from "@effect/vitest"
import type { Json } from "../../src/Domain/Record.js"
import { make, type TargetType, TypeConversionSettings } from "../../src/Tasks/TypeConversion.js"
import { batch, invalidRecord, longString, settingsOf, snapshot } from "./support.js"

const settings = settingsOf(TypeConversionSettings)
const FAIL = Symbol("fails")

/** [target, input, expected output or FAIL] */
const table: ReadonlyArray<readonly [TargetType, Json, Json | typeof FAIL]> = [
  ["integer", 42, 42],
  ["integer", "42", 42],
  ["integer", " 42 ", 42],
  ["integer", "+7", 7],
  ["integer", "-0", 0],
  ["integer", "1e3", 1000],
  ["integer", "1.0", 1],
  ["integer", "4.5", FAIL],
  ["integer", 4.5, FAIL],
  ["integer", "abc", FAIL],
  ["integer", "three", FAIL],
  ["integer", "", FAIL],
  ["integer", "   ", FAIL],
  ["integer", "0x10", FAIL],
  ["integer", "1_000", FAIL],
  ["integer", "Infinity", FAIL],
  ["integer", "1e400", FAIL],
  ["integer", 2 ** 60, FAIL],
  ["integer", true, FAIL],
  ["integer", [1], FAIL],
  ["integer", { n: 1 }, FAIL],
  ["integer", longString(10_000), FAIL],
  ["integer", "４２", FAIL],
  ["float", "123.45", 123.45],
  ["float", 123.45, 123.45],
  ["float", " -0.5 ", -0.5],
  ["float", ".5", 0.5],
  ["float", "1e-3", 0.001],
  ["float", "", FAIL],
  ["float", "abc", FAIL],
  ["float", "NaN", FAIL],
  ["float", "1.2.3", FAIL],
  ["float", "12abc", FAIL],
  ["float", false, FAIL],
  // JSON text may hold numbers beyond a double: 1e400 parses to Infinity.
  ["float", "1e400", FAIL],
  ["float", " -1e400 ", FAIL],
  ["float", Infinity, FAIL],
  ["float", -Infinity, FAIL],
  ["float", Number.NaN, FAIL],
  ["float", "1e-400", 0],
  ["float", "1.7976931348623157e308", 1.7976931348623157e308],
  ["integer", Infinity, FAIL],
  ["integer", "-1e400", FAIL],
  ["boolean", true, true],
  ["boolean", false, false],
  ["boolean", "true", true],
  ["boolean", " FALSE ", false],
  ["boolean", "True", true],
  ["boolean", "1", true],
  ["boolean", "0", false],
  ["boolean", 1, true],
  ["boolean", 0, false],
  ["boolean", "yes", true],
  ["boolean", "No", false],
  ["boolean", "maybe", FAIL],
  ["boolean", 2, FAIL],
  ["boolean", "", FAIL],
  ["boolean", ["true"], FAIL],
  ["string", "x", "x"],
  ["string", 1.5, "1.5"],
  ["string", true, "true"],
  ["string", "ünï😀", "ünï😀"],
  ["string", [1], FAIL],
  ["string", Infinity, FAIL],
  ["string", -Infinity, FAIL],
  ["boolean", Infinity, FAIL],
  ["timestamp", Infinity, FAIL],
  ["date", "1e400", FAIL],
  ["string", {}, FAIL],
  ["date", "2026-11-27", "2026-11-27"],
  ["date", " 2026-11-27 ", "2026-11-27"],
  ["date", "2026-11-27T23:30:00-02:00", "2026-11-28"],
  ["date", 1795000000000, "2026-11-18"],
  ["date", "2026-02-30", FAIL],
  ["date", "2024-02-29", "2024-02-29"],
  ["date", "2025-02-29", FAIL],
  ["date", "27/11/2026", FAIL],
  ["timestamp", "2026-11-27T10:00:00+02:00", "2026-11-27T08:00:00.000Z"],
  ["timestamp", "2026-11-27T10:00:00+0200", "2026-11-27T08:00:00.000Z"],
  ["timestamp", "2026-11-27T10:00:00Z", "2026-11-27T10:00:00.000Z"],
  ["timestamp", "2026-11-27T10:00:00", "2026-11-27T10:00:00.000Z"],
  ["timestamp", "2026-11-27 10:00:00", "2026-11-27T10:00:00.000Z"],
  ["timestamp", "2026-11-27T10:00:00.123456Z", "2026-11-27T10:00:00.123Z"],
  ["timestamp", "2026-11-27T10:00", "2026-11-27T10:00:00.000Z"],
  ["timestamp", "2026-11-27", "2026-11-27T00:00:00.000Z"],
  ["timestamp", 1795000000000, "2026-11-18T11:06:40.000Z"],
  ["timestamp", 0, "1970-01-01T00:00:00.000Z"],
  ["timestamp", "2026-13-45T99:00:00Z", FAIL],
  ["timestamp", "2026-11-27T24:00:00Z", FAIL],
  ["timestamp", "2026-11-27T10:60:00Z", FAIL],
  ["timestamp", "2026-11-27T10:00:00+25:00", FAIL],
  ["timestamp", "yesterday", FAIL],
  ["timestamp", "", FAIL],
  ["timestamp", 1.5, FAIL],
  ["timestamp", 1e20, FAIL],
  ["timestamp", true, FAIL],
  ["timestamp", ["2026-11-27"], FAIL],
  ["timestamp", `2026-11-27${" ".repeat(100_000)}`, FAIL],
]

describe("TypeConversion", () => {
  it.each(table)("%s from %j", (to, input, expected) => {
    const transform = make(settings({ fields: [{ field: "v", to }] }), { name: "conversion" })
    const records = batch({ v: input })
    const before = snapshot(records)
    const record = transform(records).records[0]!
    if (expected === FAIL) {
      assert.strictEqual(record.status, "invalid")
      assert.lengthOf(record.reasons, 1)
      const reason = record.reasons[0]!
      assert.deepInclude(reason, { task: "conversion", field: "v", rule: to })
      assert.isBelow(reason.message.length, 200, "a huge value is cut short in the message")
      assert.deepStrictEqual(record.value, { v: input }, "the value stays for the dead-letter topic")
    } else {
      assert.strictEqual(record.status, "valid")
      assert.deepStrictEqual(record.value, { v: expected })
    }
    assert.deepStrictEqual(records, before)
  })

  it("never produces NaN", () => {
    const transform = make(settings({ fields: [{ field: "v", to: "float" }] }))
    const record = transform(batch({ v: "abc" })).records[0]!
    assert.strictEqual(record.value.v, "abc")
    assert.strictEqual(record.reasons[0]!.message, 'cannot convert "abc" to float')
  })

  it("never produces Infinity, and says a number overflows a double", () => {
    const transform = make(
      settings({
        fields: [
          { field: "a", to: "float" },
          { field: "b", to: "integer" },
          { field: "c", to: "string" },
          { field: "d", to: "float" },
        ],
      }),
      { name: "conversion" },
    )
    const record = transform(batch({ a: "1e400", b: "-1e400", c: Infinity, d: -Infinity })).records[0]!
    assert.strictEqual(record.status, "invalid")
    assert.deepStrictEqual(
      record.reasons.map((r) => [r.field, r.rule, r.message]),
      [
        ["a", "float", 'cannot convert "1e400" to float: the number overflows a double (Infinity)'],
        ["b", "integer", 'cannot convert "-1e400" to integer: the number overflows a double (-Infinity)'],
        [
          "c",
          "string",
          "cannot convert Infinity to string: the number cannot be stored as a double (it overflows to Infinity)",
        ],
        [
          "d",
          "float",
          "cannot convert -Infinity to float: the number cannot be stored as a double (it overflows to -Infinity)",
        ],
      ],
    )
  })

  it("follows the field's policy for a number that overflows: null, or the original kept with a warning", () => {
    const transform = make(
      settings({
        fields: [
          { field: "a", to: "float", onFailure: "set_null" },
          { field: "b", to: "float", onFailure: "keep_original" },
        ],
      }),
    )
    const record = transform(batch({ a: "1e400", b: Infinity })).records[0]!
    assert.strictEqual(record.status, "valid")
    // Kept as it is, Infinity is for admission to refuse before either sink writes (rule number).
    assert.deepStrictEqual(record.value, { a: null, b: Infinity })
    assert.deepStrictEqual(
      record.warnings.map((w) => [w.field, w.rule]),
      [
        ["a", "float"],
        ["b", "float"],
      ],
    )
  })

  it("leaves missing and null fields alone", () => {
    const transform = make(settings({ fields: [{ field: "v", to: "integer" }] }))
    const result = transform(batch({}, { v: null }))
    assert.deepStrictEqual(
      result.records.map((record) => [record.status, record.value]),
      [
        ["valid", {}],
        ["valid", { v: null }],
      ],
    )
  })

  it("converts nested paths without touching the input", () => {
    const transform = make(settings({ fields: [{ field: "order.amount", to: "float" }] }))
    const records = batch({ order: { amount: "1.25", currency: "usd" } })
    const before = snapshot(records)
    assert.deepStrictEqual(transform(records).records[0]!.value, { order: { amount: 1.25, currency: "usd" } })
    assert.deepStrictEqual(records, before)
  })

  it("applies the failure policy per field", () => {
    const transform = make(
      settings({
        fields: [
          { field: "a", to: "integer", onFailure: "set_null" },
          { field: "b", to: "integer", onFailure: "keep_original" },
          { field: "c", to: "integer" },
        ],
        onFailure: "set_null",
      }),
    )
    const result = transform(batch({ a: "x", b: "y", c: "z" }, { a: "1", b: "2", c: "3" }))
    const [bad, good] = result.records
    assert.strictEqual(bad!.status, "valid")
    assert.deepStrictEqual(bad!.value, { a: null, b: "y", c: null })
    assert.deepStrictEqual(
      bad!.warnings.map((warning) => warning.field),
      ["a", "b", "c"],
    )
    assert.deepStrictEqual(good!.value, { a: 1, b: 2, c: 3 })
    assert.deepInclude(result.stats, { converted: 3, failed: 3, nulled: 2, keptOriginal: 1, invalidated: 0 })
  })

  it("reports every failed field of a record", () => {
    const transform = make(
      settings({
        fields: [
          { field: "amount", to: "float" },
          { field: "quantity", to: "integer" },
        ],
      }),
    )
    const record = transform(batch({ amount: "abc", quantity: "three" })).records[0]!
    assert.deepStrictEqual(
      record.reasons.map((reason) => `${reason.field}:${reason.rule}`),
      ["amount:float", "quantity:integer"],
    )
  })

  it("passes invalid and duplicate records through, and handles an empty batch", () => {
    const transform = make(settings({ fields: [{ field: "v", to: "integer" }] }))
    const records = [
      invalidRecord("0", { v: "x" }),
      { ...invalidRecord("1", { v: "y" }), status: "duplicate" as const },
    ]
    const result = transform(records)
    assert.strictEqual(result.records[0], records[0])
    assert.strictEqual(result.records[1], records[1])
    assert.strictEqual(result.stats.skipped, 2)
    assert.deepStrictEqual(transform([]).records, [])
  })
})
