import { assert, describe, it } from "@effect/vitest"
import fc from "fast-check"
import type { Json, JsonObject, PipelineRecord } from "../../src/Domain/Record.js"
import { DataQualitySettings, make as makeQuality } from "../../src/Tasks/DataQuality.js"
import { FieldMappingSettings, make as makeMapping } from "../../src/Tasks/FieldMapping.js"
import {
  make as makeStandardization,
  StandardizationOp,
  StandardizationSettings,
} from "../../src/Tasks/Standardization.js"
import { make as makeConversion, TargetType, TypeConversionSettings } from "../../src/Tasks/TypeConversion.js"
import { defaultTransforms, runChain, settingsOf, snapshot } from "./support.js"

const text = fc.oneof(
  fc.string({ unit: "binary" }),
  fc.string({ unit: "grapheme" }),
  fc.constantFrom("", " ", "  alice ", "SMITH", "(415) 555-0134", "+44 20 7946 0958", "1e3", " 42 ", "true"),
  fc.constantFrom(
    "2026-11-27T10:00:00+02:00",
    "2026-11-27 10:00:00",
    "2026-02-30",
    "yesterday",
    "ß",
    "İ",
    "ǅ",
  ),
)
const json: fc.Arbitrary<Json> = fc.oneof(
  { weight: 3, arbitrary: text },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<Json> },
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.constantFrom<Json>(null, true, false, 0, 1, 1795000000000),
)

const field = (value: fc.Arbitrary<Json>) => fc.option(value, { nil: undefined })
const compact = (object: Record<string, Json | undefined>): JsonObject =>
  Object.fromEntries(Object.entries(object).filter(([, value]) => value !== undefined)) as JsonObject

/** Contract-shaped records where any field may be missing, null, of the wrong type, or odd. */
const contractLike: fc.Arbitrary<JsonObject> = fc
  .record({
    event_id: field(fc.oneof(fc.constantFrom("evt-1", "evt-2", "evt-3"), json)),
    customer: field(
      fc.oneof(
        fc
          .record({
            first_name: field(json),
            last_name: field(json),
            email: field(fc.oneof(fc.constantFrom(" A.B@Example.COM", "not-an-email"), json)),
            phone: field(json),
            country: field(fc.oneof(fc.constantFrom("us", " de ", "GB"), json)),
          })
          .map(compact),
        json,
      ),
    ),
    order: field(
      fc.oneof(
        fc.record({ amount: field(json), currency: field(json), quantity: field(json) }).map(compact),
        json,
      ),
    ),
    status: field(fc.oneof(fc.constantFrom("paid", "lost"), json)),
    created_at: field(json),
    is_priority: field(json),
    tags: field(json),
  })
  .map(compact)

const anyRecord = fc.oneof(
  contractLike,
  fc.dictionary(fc.string(), json, { maxKeys: 5 }) as fc.Arbitrary<JsonObject>,
)

const batchOf = (values: ReadonlyArray<JsonObject>): Array<PipelineRecord> =>
  values.map((value, index) => ({ offset: String(index), value, status: "valid", reasons: [], warnings: [] }))

const flat = fc.record({ v: json }) as fc.Arbitrary<JsonObject>

describe("properties", () => {
  it("type conversion never throws and never yields NaN", () => {
    fc.assert(
      fc.property(fc.array(flat), fc.constantFrom(...TargetType.literals), (values, to) => {
        const transform = makeConversion(settingsOf(TypeConversionSettings)({ fields: [{ field: "v", to }] }))
        for (const record of transform(batchOf(values)).records) {
          const v = record.value.v
          assert.isFalse(typeof v === "number" && !Number.isFinite(v))
        }
      }),
      { numRuns: 500 },
    )
  })

  it("standardization never throws and is idempotent, op by op", () => {
    fc.assert(
      fc.property(
        fc.array(flat),
        fc.array(fc.constantFrom(...StandardizationOp.literals), { minLength: 1, maxLength: 3 }),
        (values, ops) => {
          const transform = makeStandardization(
            settingsOf(StandardizationSettings)({ fields: [{ field: "v", ops }] }),
          )
          const once = transform(batchOf(values)).records
          const twice = transform(once).records
          assert.deepStrictEqual(
            twice.map((record) => [record.status, record.value]),
            once.map((record) => [record.status, record.value]),
          )
        },
      ),
      { numRuns: 1000 },
    )
  })

  it("the default pipeline's standardization is idempotent on contract-like records", () => {
    const [mapping, conversion, standardization] = defaultTransforms()
    fc.assert(
      fc.property(fc.array(contractLike), (values) => {
        const prepared = conversion!(mapping!(batchOf(values)).records).records
        const once = standardization!(prepared).records
        const twice = standardization!(once).records
        assert.deepStrictEqual(twice, once)
      }),
      { numRuns: 500 },
    )
  })

  it("every record comes out exactly once, as valid, invalid (with reasons) or duplicate", () => {
    fc.assert(
      fc.property(
        fc.array(anyRecord, { maxLength: 30 }),
        fc.array(anyRecord, { maxLength: 30 }),
        (first, second) => {
          const transforms = defaultTransforms()
          for (const values of [first, second]) {
            const input = batchOf(values)
            const before = snapshot(input)
            const output = runChain(transforms, input)
            assert.strictEqual(output.length, input.length)
            output.forEach((record, index) => {
              assert.strictEqual(record.offset, input[index]!.offset)
              assert.include(["valid", "invalid", "duplicate"], record.status)
              if (record.status === "invalid") assert.isAbove(record.reasons.length, 0)
              else assert.lengthOf(record.reasons, 0)
            })
            assert.deepStrictEqual(input, before, "no transform mutates its input")
          }
        },
      ),
      { numRuns: 300 },
    )
  })

  it("field mapping and data quality never throw on arbitrary records", () => {
    const mapping = makeMapping(
      settingsOf(FieldMappingSettings)({
        mappings: [
          { from: "a.b", to: "c" },
          { from: "c", to: "a.b.d", default: 1 },
          { from: "x", to: "y", required: true },
        ],
      }),
    )
    const quality = makeQuality(
      settingsOf(DataQualitySettings)({
        rules: [
          { rule: "NotEmpty", field: "a.b" },
          { rule: "Range", field: "c", min: 0 },
          { rule: "Pattern", field: "y", pattern: "^[a-z]+$" },
          { rule: "Type", field: "a", type: "object" },
          { rule: "OneOf", field: "c", values: ["x", 1], ignoreCase: true },
          { rule: "Length", field: "y", min: 1, max: 3 },
        ],
        threshold: { maxInvalidRatio: 0.5 },
      }),
    )
    const nested = fc.dictionary(fc.constantFrom("a", "b", "c", "x", "y", "d"), json, { maxKeys: 4 })
    fc.assert(
      fc.property(fc.array(fc.oneof(nested, anyRecord) as fc.Arbitrary<JsonObject>), (values) => {
        const result = quality(mapping(batchOf(values)).records)
        assert.strictEqual(result.records.length, values.length)
        assert.isTrue(result.threshold!.invalidRatio >= 0 && result.threshold!.invalidRatio <= 1)
      }),
      { numRuns: 500 },
    )
  })
})
