import { assert, describe, it } from "@effect/vitest"
import fc from "fast-check"
import { formatIso, parseTimestamp, toIsoTimestamp } from "../../src/Domain/Timestamp.js"

const epochMs = fc.integer({ min: -62_167_219_200_000, max: 253_402_300_799_999 })
const pad = (n: number, width = 2) => String(Math.abs(n)).padStart(width, "0")

describe("Timestamp", () => {
  it("formats exactly like Date#toISOString for years 0000-9999", () => {
    fc.assert(
      fc.property(epochMs, (ms) => {
        assert.strictEqual(formatIso(ms), new Date(ms).toISOString())
      }),
      { numRuns: 5_000 },
    )
  })

  it("reads back any instant written with any zone offset", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 253_402_300_799_999 - 86_400_000 }),
        fc.integer({ min: -(23 * 60 + 59), max: 23 * 60 + 59 }),
        fc.constantFrom(":", ""),
        (ms, offsetMinutes, colon) => {
          const local = new Date(ms + offsetMinutes * 60_000)
          if (local.getUTCFullYear() > 9999 || local.getUTCFullYear() < 0) return
          const sign = offsetMinutes < 0 ? "-" : "+"
          const zone = `${sign}${pad(Math.trunc(offsetMinutes / 60))}${colon}${pad(offsetMinutes % 60)}`
          const text = `${local.toISOString().slice(0, 23)}${zone}`
          assert.strictEqual(parseTimestamp(text), ms, text)
        },
      ),
      { numRuns: 5_000 },
    )
  })

  it("rejects impossible calendar dates that Date would roll over", () => {
    for (const text of ["2026-02-29", "2026-04-31", "2100-02-29", "2026-00-10", "2026-01-00", "2026-01-32"]) {
      assert.isUndefined(parseTimestamp(text), text)
    }
    assert.strictEqual(toIsoTimestamp("2000-02-29"), "2000-02-29T00:00:00.000Z")
    assert.strictEqual(toIsoTimestamp("0000-01-01T00:00:00Z"), "0000-01-01T00:00:00.000Z")
    assert.strictEqual(toIsoTimestamp("9999-12-31T23:59:59.999Z"), "9999-12-31T23:59:59.999Z")
    assert.isUndefined(toIsoTimestamp("9999-12-31T23:59:59.999-01:00"), "past year 9999 in UTC")
  })
})
