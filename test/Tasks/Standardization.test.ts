import { assert, describe, it } from "@effect/vitest"
import { toE164 } from "../../src/Domain/Phone.js"
import type { Json } from "../../src/Domain/Record.js"
import {
  make,
  type StandardizationOp,
  StandardizationSettings,
  titleCase,
} from "../../src/Tasks/Standardization.js"
import { batch, invalidRecord, longString, settingsOf, snapshot } from "./support.js"

const settings = settingsOf(StandardizationSettings)
const FAIL = Symbol("fails")

/** [ops, input, expected or FAIL] */
const table: ReadonlyArray<readonly [ReadonlyArray<StandardizationOp>, Json, Json | typeof FAIL]> = [
  [["trim"], "  alice ", "alice"],
  [["trim"], "\t\n x \u00a0", "x"],
  [["collapse_whitespace"], "mary   jane\t\nsmith", "mary jane smith"],
  [["trim", "collapse_whitespace", "title_case"], "  mary   JANE  ", "Mary Jane"],
  [["title_case"], "SMITH", "Smith"],
  [["title_case"], "o'BRIEN-smith", "O'Brien-Smith"],
  [["title_case"], "élodie dupré", "Élodie Dupré"],
  [["title_case"], "straße", "Straße"],
  [["title_case"], "ßa", "ßa"],
  [["title_case"], "王 小明", "王 小明"],
  [["title_case"], "😀smile", "😀smile"],
  [["title_case"], 42, FAIL],
  [["title_case"], ["alice"], FAIL],
  [["title_case"], { first: "alice" }, FAIL],
  [["lower_case"], "ÀB", "àb"],
  [["upper_case"], " usd", " USD"],
  [["trim", "upper_case"], " eur ", "EUR"],
  [["email"], " Alice.Smith@Example.COM", "alice.smith@example.com"],
  [["email"], true, FAIL],
  [["country_code"], " de ", "DE"],
  [["country_code"], "us", "US"],
  [["phone_e164"], "(415) 555-0134", "+14155550134"],
  [["phone_e164"], "415.555.0134", "+14155550134"],
  [["phone_e164"], "+44 20 7946 0958", "+442079460958"],
  [["phone_e164"], 4155550134, "+14155550134"],
  [["phone_e164"], "call me", FAIL],
  [["phone_e164"], "12", FAIL],
  [["phone_e164"], 1.5, FAIL],
  [["phone_e164"], longString(100_000), FAIL],
  [["timestamp_utc"], "2026-11-27T10:00:00+02:00", "2026-11-27T08:00:00.000Z"],
  [["timestamp_utc"], "2026-11-27 10:00:00", "2026-11-27T10:00:00.000Z"],
  [["timestamp_utc"], 1795000000000, "2026-11-18T11:06:40.000Z"],
  [["timestamp_utc"], "2026-11-27T08:00:00.000Z", "2026-11-27T08:00:00.000Z"],
  [["timestamp_utc"], "yesterday", FAIL],
  [["date"], "2026-11-27T23:30:00-02:00", "2026-11-28"],
  [["empty_to_null"], "   ", null],
  [["empty_to_null", "title_case"], "", null],
  [["empty_to_null"], "x", "x"],
  [["trim"], longString(1_000_000), longString(1_000_000)],
]

describe("Standardization", () => {
  it.each(table)("%j on %j", (ops, input, expected) => {
    const transform = make(settings({ fields: [{ field: "v", ops }] }), { name: "std" })
    const records = batch({ v: input })
    const before = snapshot(records)
    const record = transform(records).records[0]!
    if (expected === FAIL) {
      assert.strictEqual(record.status, "invalid")
      assert.deepInclude(record.reasons[0], { task: "std", field: "v" })
      assert.isBelow(record.reasons[0]!.message.length, 200)
    } else {
      assert.strictEqual(record.status, "valid")
      assert.deepStrictEqual(record.value, { v: expected })
      const again = transform([record]).records[0]!
      assert.deepStrictEqual(again.value, record.value, "idempotent")
    }
    assert.deepStrictEqual(records, before)
  })

  it("names the failing operation in the reason", () => {
    const transform = make(settings({ fields: [{ field: "phone", ops: ["trim", "phone_e164"] }] }))
    const record = transform(batch({ phone: " 555 " })).records[0]!
    assert.deepStrictEqual(record.reasons, [
      {
        task: "standardization",
        field: "phone",
        rule: "phone_e164",
        message: 'cannot read "555" as a phone number (default country US)',
      },
    ])
  })

  it("uses the field's default country over the task's", () => {
    const transform = make(
      settings({
        defaultCountry: "DE",
        fields: [
          { field: "a", ops: ["phone_e164"] },
          { field: "b", ops: ["phone_e164"], defaultCountry: "GB" },
        ],
      }),
    )
    assert.deepStrictEqual(transform(batch({ a: "030 1234567", b: "020 7946 0958" })).records[0]!.value, {
      a: "+49301234567",
      b: "+442079460958",
    })
  })

  it("applies the failure policy", () => {
    const transform = make(
      settings({
        fields: [
          { field: "a", ops: ["phone_e164"], onFailure: "set_null" },
          { field: "b", ops: ["title_case"], onFailure: "keep_original" },
        ],
      }),
    )
    const record = transform(batch({ a: "nope", b: 7 })).records[0]!
    assert.strictEqual(record.status, "valid")
    assert.deepStrictEqual(record.value, { a: null, b: 7 })
    assert.lengthOf(record.warnings, 2)
  })

  it("leaves missing and null fields, invalid records and empty batches alone", () => {
    const transform = make(settings({ fields: [{ field: "v", ops: ["title_case"] }] }))
    const records = [...batch({}, { v: null }), invalidRecord("2", { v: "x" })]
    const result = transform(records)
    result.records.forEach((record, index) => {
      assert.strictEqual(record, records[index])
    })
    assert.deepInclude(result.stats, { changed: 0, skipped: 1 })
    assert.deepStrictEqual(transform([]).records, [])
  })

  it("title-cases idempotently", () => {
    for (const text of ["ǆemal", "İstanbul", "ﬁsh", "ŉ", "ΣΊΣΥΦΟΣ", "a-b'c’d e"]) {
      assert.strictEqual(titleCase(titleCase(text)), titleCase(text), text)
    }
  })
})

describe("toE164", () => {
  const phones: ReadonlyArray<readonly [string, string, string | undefined]> = [
    ["(415) 555-0134", "US", "+14155550134"],
    ["1 (415) 555-0134", "US", "+14155550134"],
    ["011 44 20 7946 0958", "US", "+442079460958"],
    ["(604) 555-0101", "CA", "+16045550101"],
    ["+44 20 7946 0958", "US", "+442079460958"],
    ["+44 (0)20 7946 0958", "US", "+442079460958"],
    ["020 7946 0958", "GB", "+442079460958"],
    ["0044 20 7946 0958", "DE", "+442079460958"],
    ["030 1234567", "DE", "+49301234567"],
    ["01 23 45 67 89", "FR", "+33123456789"],
    ["+33 6 12 34 56 78", "US", "+33612345678"],
    ["+81 3-1234-5678", "US", "+81312345678"],
    ["+972 3 123 4567", "US", "+97231234567"],
    ["+14155550134", "GB", "+14155550134"],
    ["4155550134", "GB", undefined],
    ["(015) 555-0134", "US", undefined],
    ["555-0134", "US", undefined],
    ["+1 234", "US", undefined],
    ["+0 123 456 789", "US", undefined],
    ["+1234567890123456", "US", undefined],
    ["415-555-0134 ext 12", "US", undefined],
    ["", "US", undefined],
    ["+", "US", undefined],
  ]
  it.each(phones)("%s in %s", (input, country, expected) => {
    assert.strictEqual(toE164(input, country), expected)
    if (expected !== undefined) assert.strictEqual(toE164(expected, country), expected, "idempotent")
  })
})
