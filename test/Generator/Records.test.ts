import { assert, describe, it } from "@effect/vitest"
import { RECORD_DEFECTS } from "../../src/Generator/Defects.js"
import {
  defaultRecordOptions,
  encode,
  type GeneratedRecord,
  generate,
  type RecordOptions,
  recordAt,
} from "../../src/Generator/Records.js"
import { violations } from "./Contract.js"

const N = 10_000
const options: RecordOptions = { ...defaultRecordOptions, seed: 42 }
const all = (o: RecordOptions, n = N): Array<GeneratedRecord> => [...generate(o, 0, n)]
const sample = all(options)
const ofKind = (records: ReadonlyArray<GeneratedRecord>, kind: GeneratedRecord["kind"]) =>
  records.filter((r) => r.kind === kind)
const share = (records: ReadonlyArray<GeneratedRecord>, kind: GeneratedRecord["kind"]) =>
  ofKind(records, kind).length / records.length
const objectOf = (r: GeneratedRecord) => {
  if (r.value instanceof Uint8Array) throw new Error(`record ${r.index} is bytes`)
  return r.value
}

describe("Records", () => {
  describe("determinism", () => {
    it("gives the same bytes for the same seed", () => {
      const again = all(options, 2000)
      assert.deepStrictEqual(
        again.map((r) => encode(r).toString()),
        sample.slice(0, 2000).map((r) => encode(r).toString()),
      )
    })

    it("gives different records for another seed, with other event ids", () => {
      const other = all({ ...options, seed: 43 }, 100)
      const same = other.filter((r, i) => encode(r).equals(encode(sample[i] as GeneratedRecord)))
      assert.strictEqual(same.length, 0)
    })

    it("builds any record on its own, equal to the one in the stream", () => {
      for (const i of [0, 1, 17, 999, 5000, 9999])
        assert.deepStrictEqual(recordAt(options, i), sample[i] as GeneratedRecord)
      assert.deepStrictEqual([...generate(options, 5000, 3)], sample.slice(5000, 5003))
    })

    it("keys every record by an event id unique except for duplicates", () => {
      const fresh = sample.filter((r) => r.kind !== "duplicate" && r.key !== null).map((r) => r.key)
      assert.strictEqual(new Set(fresh).size, fresh.length)
      for (const r of sample.filter((r) => r.value instanceof Uint8Array === false && r.key !== null))
        assert.strictEqual(r.key, objectOf(r).event_id)
    })
  })

  describe("ratios over 10,000 records", () => {
    it("meets the default invalid and duplicate ratios within 1.5 points", () => {
      assert.approximately(share(sample, "invalid"), 0.1, 0.015)
      assert.approximately(share(sample, "duplicate"), 0.05, 0.015)
      assert.strictEqual(share(sample, "malformed"), 0)
      assert.strictEqual(share(sample, "oversized"), 0)
    })

    it("meets other ratios, and spreads invalid records over every defect", () => {
      const records = all({
        ...options,
        invalidRatio: 0.3,
        duplicateRatio: 0.1,
        malformedRatio: 0.05,
        oversizedRatio: 0.01,
        oversizedBytes: 2048,
      })
      assert.approximately(share(records, "invalid"), 0.3, 0.015)
      assert.approximately(share(records, "duplicate"), 0.1, 0.015)
      assert.approximately(share(records, "malformed"), 0.05, 0.01)
      assert.approximately(share(records, "oversized"), 0.01, 0.005)
      const invalid = ofKind(records, "invalid")
      for (const d of RECORD_DEFECTS)
        assert.approximately(invalid.filter((r) => r.defect === d).length / invalid.length, 1 / 6, 0.03, d)
    })

    it("pattern valid has no invalid records and pattern invalid nothing valid", () => {
      const valid = all({ ...options, pattern: "valid" }, 2000)
      assert.deepStrictEqual([...new Set(valid.map((r) => r.kind))].sort(), ["duplicate", "valid"])
      const invalid = all({ ...options, pattern: "invalid" }, 2000)
      assert.deepStrictEqual([...new Set(invalid.map((r) => r.kind))], ["invalid"])
    })
  })

  describe("the contract", () => {
    it("every valid record and every duplicate satisfies it", () => {
      for (const r of sample.filter((r) => r.kind === "valid" || r.kind === "duplicate")) {
        assert.deepStrictEqual(violations(r.value), [], `record ${r.index}: ${JSON.stringify(r.value)}`)
        assert.notProperty(objectOf(r), "_defect")
      }
    })

    it("every invalid record has exactly the one defect it is tagged with", () => {
      const invalid = ofKind(sample, "invalid")
      assert.isAbove(invalid.length, 500)
      for (const r of invalid) {
        const value = objectOf(r)
        assert.strictEqual(value._defect, r.defect)
        assert.deepStrictEqual(
          violations(value),
          [{ defect: r.defect, field: r.field }],
          `record ${r.index}: ${JSON.stringify(value)}`,
        )
      }
    })

    it("damages the fields the issue names, in the ways it names", () => {
      const seen = new Set<string>()
      for (const r of ofKind(sample, "invalid")) {
        const value = objectOf(r)
        const order = value.order as Record<string, unknown>
        const customer = value.customer as Record<string, unknown>
        const detail =
          r.defect === "missing_required_field"
            ? r.field
            : r.field === "order.amount"
              ? `${r.field}=${order.amount}`
              : r.field === "order.quantity"
                ? `${r.field}=${order.quantity}`
                : r.field === "order.currency"
                  ? `${r.field}=${order.currency}`
                  : r.field === "customer.email"
                    ? `${r.field}=${customer.email}`
                    : `${r.field}=${value[r.field ?? ""]}`
        seen.add(`${r.defect} ${detail}`)
      }
      assert.deepStrictEqual([...seen].sort(), [
        "bad_date created_at=2026-13-45T99:00:00Z",
        "bad_date created_at=yesterday",
        "bad_enum order.currency=XYZ",
        "bad_enum status=lost",
        "bad_pattern customer.email=not-an-email",
        "missing_required_field created_at",
        "missing_required_field customer.email",
        "missing_required_field event_id",
        "missing_required_field order.amount",
        "out_of_range order.amount=-5",
        "out_of_range order.amount=-5.00",
        "out_of_range order.quantity=0",
        "out_of_range order.quantity=5000",
        "wrong_type order.amount=abc",
        "wrong_type order.quantity=three",
      ])
    })

    it("a record without its event_id has no key", () => {
      const missing = sample.filter((r) => r.field === "event_id")
      assert.isAbove(missing.length, 0)
      for (const r of missing) assert.strictEqual(r.key, null)
    })

    it("shows every accepted shape of the messy fields", () => {
      const values = ofKind(sample, "valid").map(objectOf)
      const typesOf = (pick: (v: (typeof values)[number]) => unknown) =>
        [...new Set(values.map((v) => typeof pick(v)))].sort()
      assert.deepStrictEqual(
        typesOf((v) => (v.order as Record<string, unknown>).amount),
        ["number", "string"],
      )
      assert.deepStrictEqual(
        typesOf((v) => (v.order as Record<string, unknown>).quantity),
        ["number", "string"],
      )
      assert.deepStrictEqual(
        typesOf((v) => v.created_at),
        ["number", "string"],
      )
      assert.deepStrictEqual(
        typesOf((v) => v.is_priority),
        ["boolean", "string"],
      )
      const dates = values.map((v) => v.created_at).filter((d) => typeof d === "string")
      assert.isTrue(dates.some((d) => / \d{2}:/.test(d)))
      assert.isTrue(dates.some((d) => /T.*[+-]\d{2}:\d{2}$/.test(d)))
      const phones = values.map((v) => String((v.customer as Record<string, unknown>).phone))
      for (const form of [/^\(\d{3}\) 555-01\d{2}$/, /^\d{3}\.555\.01\d{2}$/, /^\+44 /, /^\+49 /, /^\+33 /])
        assert.isTrue(
          phones.some((p) => form.test(p)),
          String(form),
        )
      const countries = new Set(values.map((v) => String((v.customer as Record<string, unknown>).country)))
      assert.isTrue([...countries].some((c) => c !== c.trim()))
      assert.isTrue([...countries].some((c) => c === c.toLowerCase()))
      assert.isTrue(values.some((v) => Array.isArray(v.tags)) && values.some((v) => v.tags === undefined))
    })
  })

  describe("duplicates", () => {
    it("repeat an earlier valid record, same event id and same content", () => {
      const duplicates = ofKind(sample, "duplicate")
      assert.isAbove(duplicates.length, 0)
      for (const d of duplicates) {
        const original = sample[d.originalIndex ?? -1] as GeneratedRecord
        assert.isBelow(original.index, d.index)
        assert.strictEqual(original.kind, "valid")
        assert.strictEqual(d.isDuplicateOf, original.key)
        assert.strictEqual(d.key, original.key)
        assert.isTrue(encode(d).equals(encode(original)))
      }
    })

    it("land sometimes within a batch of the original and sometimes far from it", () => {
      const distances = ofKind(sample, "duplicate").map((d) => d.index - (d.originalIndex ?? 0))
      const near = distances.filter((x) => x <= 100).length / distances.length
      const far = distances.filter((x) => x > 1000).length / distances.length
      assert.isAbove(near, 0.3)
      assert.isAbove(far, 0.2)
    })
  })

  describe("non-records", () => {
    const records = all({ ...options, malformedRatio: 0.2, oversizedRatio: 0.01, oversizedBytes: 4096 }, 3000)

    it("malformed messages are bytes that do not parse, on one line, tagged malformed_json", () => {
      const malformed = ofKind(records, "malformed")
      assert.isAbove(malformed.length, 400)
      for (const r of malformed) {
        const text = encode(r).toString()
        assert.strictEqual(r.defect, "malformed_json")
        assert.notInclude(text, "\n")
        assert.throws(() => JSON.parse(text), SyntaxError, undefined, text)
      }
    })

    it("oversized messages are well-formed JSON of exactly --oversized-bytes bytes, tagged oversized", () => {
      const oversized = ofKind(records, "oversized")
      assert.isAbove(oversized.length, 10)
      for (const r of oversized) {
        const bytes = encode(r)
        assert.strictEqual(r.defect, "oversized")
        assert.strictEqual(bytes.length, 4096)
        assert.deepStrictEqual(violations(JSON.parse(bytes.toString())), [])
      }
    })

    it("the default oversized message is one byte over 1 MiB", () => {
      const first = [
        ...generate({ ...options, duplicateRatio: 0, oversizedRatio: 1 }, 0, 1),
      ][0] as GeneratedRecord
      assert.strictEqual(encode(first).length, 1_048_577)
    })
  })
})
