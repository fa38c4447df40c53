import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import type { Json, JsonObject } from "../../src/Domain/Record.js"
import {
  DataQualitySettings,
  enforceThreshold,
  make,
  QualityThresholdExceeded,
} from "../../src/Tasks/DataQuality.js"
import { captureLogs, parseJsonLines } from "../Observability/support.js"
import { batch, invalidRecord, longString, settingsOf, snapshot } from "./support.js"

const settings = settingsOf(DataQualitySettings)
const PASS = "pass"

/** [rule settings (field v), value or undefined for missing, PASS or the expected message] */
const table: ReadonlyArray<readonly [JsonObject, Json | undefined, string]> = [
  [{ rule: "NotNull" }, "x", PASS],
  [{ rule: "NotNull" }, 0, PASS],
  [{ rule: "NotNull" }, "", PASS],
  [{ rule: "NotNull" }, undefined, "v is missing"],
  [{ rule: "NotNull" }, null, "v is null"],
  [{ rule: "NotEmpty" }, "x", PASS],
  [{ rule: "NotEmpty" }, "  ", "v is empty"],
  [{ rule: "NotEmpty" }, [], "v is empty"],
  [{ rule: "NotEmpty" }, {}, "v is empty"],
  [{ rule: "NotEmpty" }, undefined, "v is missing"],
  [{ rule: "Range", min: 0.01, max: 100000 }, 0.01, PASS],
  [{ rule: "Range", min: 0.01, max: 100000 }, 100000, PASS],
  [{ rule: "Range", min: 0.01, max: 100000 }, -5, "v -5 is below the minimum 0.01"],
  [{ rule: "Range", min: 1, max: 1000 }, 5000, "v 5000 is above the maximum 1000"],
  [{ rule: "Range", min: 1 }, 0, "v 0 is below the minimum 1"],
  [{ rule: "Range", max: 1 }, "0", "v should be a number, got string"],
  [{ rule: "Range", max: 1 }, [0], "v should be a number, got array"],
  [{ rule: "Range", max: 1 }, undefined, PASS],
  [{ rule: "Range", max: 1 }, null, PASS],
  [{ rule: "Pattern", pattern: "^[^@\\s]+@[^@\\s]+\\.[a-z]{2,}$" }, "a@b.co", PASS],
  [
    { rule: "Pattern", pattern: "^[^@\\s]+@[^@\\s]+\\.[a-z]{2,}$" },
    "not-an-email",
    'v "not-an-email" does not match ^[^@\\s]+@[^@\\s]+\\.[a-z]{2,}$',
  ],
  [{ rule: "Pattern", pattern: "^a+$", flags: "i" }, "AAA", PASS],
  [{ rule: "Pattern", pattern: "^\\p{L}+$", flags: "u" }, "élodie", PASS],
  [{ rule: "Pattern", pattern: "^a" }, { a: 1 }, "v should be a string, got object"],
  [
    { rule: "Pattern", pattern: "^[^@\\s]+@[^@\\s]+\\.[a-z]{2,}$", maxLength: 300_000 },
    `${longString(200_000)}@x`,
    `v "${longString(60)}"… does not match ^[^@\\s]+@[^@\\s]+\\.[a-z]{2,}$`,
  ],
  // Values longer than maxLength (4096 characters by default) are not tested.
  [{ rule: "Pattern", pattern: "^x+$" }, longString(4096), PASS],
  [
    { rule: "Pattern", pattern: "^x+$" },
    longString(4097),
    "v is 4097 characters long, longer than the 4096 a pattern is tested on (maxLength)",
  ],
  [
    { rule: "Pattern", pattern: "^x+$", maxLength: 10 },
    "😀".repeat(11),
    "v is 11 characters long, longer than the 10 a pattern is tested on (maxLength)",
  ],
  [{ rule: "Pattern", pattern: "^😀+$", maxLength: 10 }, "😀".repeat(10), PASS],
  // RE2 reads the value as Unicode whatever the flags: "." is one character, an emoji too.
  [{ rule: "Pattern", pattern: "^a.b$" }, "a😀b", PASS],
  [{ rule: "Type", type: "array" }, ["gift"], PASS],
  [{ rule: "Type", type: "array" }, "gift", "v should be array, got string"],
  [{ rule: "Type", type: "integer" }, 1.5, "v should be integer, got number"],
  [{ rule: "Type", type: "object" }, [], "v should be object, got array"],
  [{ rule: "Type", type: "string" }, undefined, PASS],
  [{ rule: "OneOf", values: ["pending", "paid"] }, "paid", PASS],
  [{ rule: "OneOf", values: ["pending", "paid"] }, "lost", 'v "lost" is not one of pending, paid'],
  [{ rule: "OneOf", values: ["USD", "EUR"] }, "usd", 'v "usd" is not one of USD, EUR'],
  [{ rule: "OneOf", values: ["USD", "EUR"], ignoreCase: true }, "usd", PASS],
  [{ rule: "OneOf", values: [1, 2, true] }, 2, PASS],
  [{ rule: "OneOf", values: [1, 2] }, "1", 'v "1" is not one of 1, 2'],
  [{ rule: "OneOf", values: ["a"] }, ["a"], 'v ["a"] is not one of a'],
  [{ rule: "Length", exact: 2 }, "US", PASS],
  [{ rule: "Length", exact: 2 }, "USA", "v has length 3, expected 2"],
  [{ rule: "Length", exact: 2 }, "🇺🇸", PASS],
  [{ rule: "Length", min: 1, max: 3 }, [1, 2, 3, 4], "v has length 4, above the maximum 3"],
  [{ rule: "Length", min: 1 }, "", "v has length 0, below the minimum 1"],
  [{ rule: "Length", min: 1 }, 12, "v should be a string or an array, got number"],
]

describe("DataQuality rules", () => {
  it.each(table)("%j on %j", (rule, value, expected) => {
    const quality = make(settings({ rules: [{ ...rule, field: "v" }] }), { name: "quality" })
    const records = batch(value === undefined ? {} : { v: value })
    const before = snapshot(records)
    const record = quality(records).records[0]!
    if (expected === PASS) {
      assert.strictEqual(record.status, "valid")
      assert.deepStrictEqual(record.reasons, [])
    } else {
      assert.strictEqual(record.status, "invalid")
      assert.deepStrictEqual(record.reasons, [
        { task: "quality", field: "v", rule: String(rule.rule), message: expected },
      ])
    }
    assert.deepStrictEqual(records, before)
  })
})

describe("DataQuality", () => {
  it("keeps records valid on warn rules, with a warning", () => {
    const quality = make(
      settings({ rules: [{ rule: "Type", field: "tags", type: "array", severity: "warn" }] }),
    )
    const result = quality(batch({ tags: "gift" }))
    const record = result.records[0]!
    assert.strictEqual(record.status, "valid")
    assert.deepStrictEqual(record.warnings, [
      { task: "data_quality", field: "tags", rule: "Type", message: "tags should be array, got string" },
    ])
    assert.deepInclude(result.stats, { warnings: 1, invalidated: 0 })
  })

  it("reports every failed rule of a record", () => {
    const quality = make(
      settings({
        rules: [
          { rule: "NotNull", field: "email" },
          { rule: "Range", field: "amount", min: 1 },
          { rule: "OneOf", field: "status", values: ["paid"] },
        ],
      }),
    )
    const record = quality(batch({ amount: 0, status: "lost" })).records[0]!
    assert.deepStrictEqual(
      record.reasons.map((reason) => `${reason.field}:${reason.rule}`),
      ["email:NotNull", "amount:Range", "status:OneOf"],
    )
  })

  it("passes invalid and duplicate records through, counting them for the threshold", () => {
    const quality = make(
      settings({
        rules: [{ rule: "NotNull", field: "v" }],
        threshold: { maxInvalidRatio: 0.5, action: "log", minRecords: 1 },
      }),
    )
    const earlier = invalidRecord("0", {})
    const duplicate = { ...invalidRecord("1", {}), status: "duplicate" as const, reasons: [] }
    const result = quality([earlier, duplicate, ...batch({ v: 1 }, {})])
    assert.strictEqual(result.records[0], earlier)
    assert.strictEqual(result.records[1], duplicate)
    assert.deepStrictEqual(result.stats, {
      records: 4,
      checked: 2,
      invalidated: 1,
      warnings: 0,
      invalid: 2,
      thresholdExceeded: 1,
      skipped: 2,
    })
    assert.deepStrictEqual(result.threshold, {
      invalidRatio: 2 / 3,
      maxInvalidRatio: 0.5,
      exceeded: true,
      action: "log",
    })
  })

  it("handles an empty batch and a batch of invalid records", () => {
    const quality = make(
      settings({
        rules: [{ rule: "NotNull", field: "v" }],
        threshold: { maxInvalidRatio: 0.5, minRecords: 1 },
      }),
    )
    const empty = quality([])
    assert.deepStrictEqual(empty.records, [])
    assert.strictEqual(empty.threshold?.exceeded, false)
    const allInvalid = quality([invalidRecord("0", {}), invalidRecord("1", {})])
    assert.deepInclude(allInvalid.stats, { checked: 0, invalid: 2, thresholdExceeded: 1 })
  })

  it("does not judge a batch smaller than minRecords (default 20)", () => {
    const quality = make(
      settings({ rules: [{ rule: "NotNull", field: "v" }], threshold: { maxInvalidRatio: 0.1 } }),
    )
    const small = quality(batch({}, {}, { v: 1 }))
    assert.strictEqual(small.threshold?.exceeded, false)
    const large = quality(batch(...Array.from({ length: 20 }, (_, i) => (i < 5 ? {} : { v: i }))))
    assert.strictEqual(large.threshold?.exceeded, true)
  })

  it.effect("logs a crossed threshold with action log", () =>
    Effect.gen(function* () {
      const quality = make(
        settings({
          rules: [{ rule: "NotNull", field: "v" }],
          threshold: { maxInvalidRatio: 0.1, minRecords: 1 },
        }),
      )
      const { lines } = yield* captureLogs(enforceThreshold(quality(batch({ v: 1 }, {}))))
      const [line, ...others] = parseJsonLines(lines)
      assert.lengthOf(others, 0)
      assert.strictEqual(line?.level, "WARN")
      assert.strictEqual(
        line?.message,
        "data_quality: 1 of 2 records invalid (ratio 0.500), above the threshold 0.1",
      )
      assert.deepStrictEqual(line?.annotations, {
        task: "data_quality",
        invalidRatio: 0.5,
        maxInvalidRatio: 0.1,
      })
    }),
  )

  it.effect("fails the batch on a crossed threshold with action fail", () =>
    Effect.gen(function* () {
      const quality = make(
        settings({
          rules: [{ rule: "NotNull", field: "v" }],
          threshold: { maxInvalidRatio: 0.4, action: "fail", minRecords: 1 },
        }),
      )
      const below = yield* Effect.exit(enforceThreshold(quality(batch({ v: 1 }, { v: 1 }, {}))))
      assert.isTrue(Exit.isSuccess(below))
      const above = yield* Effect.flip(enforceThreshold(quality(batch({ v: 1 }, {})), "quality"))
      assert.instanceOf(above, QualityThresholdExceeded)
      assert.strictEqual(above.retryable, false)
      assert.strictEqual(
        above.message,
        "quality: 1 of 2 records invalid (ratio 0.500), above the threshold 0.4",
      )
    }),
  )

  it("rejects bad rule settings when decoded", () => {
    assert.throws(() => settings({ rules: [{ rule: "Pattern", field: "v", pattern: "([a-z" }] }))
    assert.throws(() => settings({ rules: [{ rule: "Pattern", field: "v", pattern: "a", maxLength: 0 }] }))
    assert.throws(() => settings({ rules: [{ rule: "Pattern", field: "v", pattern: "a", flags: "g" }] }))
    assert.throws(() => settings({ rules: [{ rule: "Range", field: "v" }] }))
    assert.throws(() => settings({ rules: [{ rule: "Range", field: "v", min: 2, max: 1 }] }))
    assert.throws(() => settings({ rules: [{ rule: "Length", field: "v", exact: 2, min: 1 }] }))
    assert.throws(() => settings({ rules: [{ rule: "OneOf", field: "v", values: [] }] }))
    assert.throws(() => settings({ rules: [{ rule: "Unknown", field: "v" }] }))
  })
})
