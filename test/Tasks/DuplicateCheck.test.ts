import { assert, describe, it } from "@effect/vitest"
import fc from "fast-check"
import { type JsonObject, makeRecord, type PipelineRecord } from "../../src/Domain/Record.js"
import { DuplicateCheckSettings, KeyWindow, make } from "../../src/Tasks/DuplicateCheck.js"
import { hashOf } from "../../src/Tasks/KeyWindow.js"
import { invalidRecord, settingsOf, snapshot } from "./support.js"

const settings = settingsOf(DuplicateCheckSettings)

/** A controllable clock, in milliseconds. */
const clock = () => {
  let time = 1_000_000
  return { now: () => time, advance: (ms: number) => (time += ms) }
}

let nextOffset = 0
const records = (...values: ReadonlyArray<JsonObject>): Array<PipelineRecord> =>
  values.map((value) => makeRecord(String(nextOffset++), value))

const statuses = (result: { readonly records: ReadonlyArray<PipelineRecord> }) =>
  result.records.map((record) => record.status)

describe("DuplicateCheck", () => {
  it("removes repeats within a batch, keeping the first", () => {
    const check = make(settings({ key: ["id"] }))
    const input = records({ id: "a" }, { id: "b" }, { id: "a" }, { id: "a" })
    const before = snapshot(input)
    const result = check(input)
    assert.deepStrictEqual(statuses(result), ["valid", "valid", "duplicate", "duplicate"])
    assert.deepInclude(result.stats, { records: 4, duplicates: 2, removed: 2 })
    assert.deepStrictEqual(result.levels, { windowKeys: 2 })
    assert.deepStrictEqual(
      result.records.map((record) => record.key),
      ["a", "b", "a", "a"],
    )
    assert.deepStrictEqual(input, before)
  })

  it("removes repeats across batches", () => {
    const check = make(settings({ key: ["id"] }))
    check(records({ id: "a" }))
    assert.deepStrictEqual(statuses(check(records({ id: "a" }, { id: "c" }))), ["duplicate", "valid"])
  })

  it("marks with a flag field and keeps the record valid", () => {
    const check = make(settings({ key: ["id"], action: "mark", markField: "meta.duplicate" }))
    const result = check(records({ id: 1 }, { id: 1, meta: { source: "x" } }))
    assert.deepStrictEqual(statuses(result), ["valid", "valid"])
    assert.deepStrictEqual(result.records[1]!.value, { id: 1, meta: { source: "x", duplicate: true } })
    assert.strictEqual(result.stats.marked, 1)
  })

  it("keeps and only counts", () => {
    const check = make(settings({ key: ["id"], action: "keep" }))
    const input = records({ id: 1 }, { id: 1 })
    const result = check(input)
    assert.deepStrictEqual(statuses(result), ["valid", "valid"])
    assert.deepStrictEqual(result.records[1]!.value, input[1]!.value)
    assert.deepInclude(result.stats, { duplicates: 1, removed: 0, marked: 0 })
  })

  it("keys on several fields, nested ones included", () => {
    const check = make(settings({ key: ["customer.id", "order"] }))
    const result = check(
      records(
        { customer: { id: 1 }, order: "x" },
        { customer: { id: 1 }, order: "y" },
        { customer: { id: 1 }, order: "x" },
      ),
    )
    assert.deepStrictEqual(statuses(result), ["valid", "valid", "duplicate"])
    assert.strictEqual(result.records[0]!.key, '[1,"x"]')
  })

  it("lets records without a key pass unchecked", () => {
    const check = make(settings({ key: ["id"] }))
    const result = check(records({}, {}, { id: null }, { id: null }))
    assert.deepStrictEqual(statuses(result), ["valid", "valid", "valid", "valid"])
    assert.strictEqual(result.stats.unkeyed, 4)
  })

  it("neither checks nor remembers invalid records", () => {
    const check = make(settings({ key: ["id"] }))
    const invalid = invalidRecord("900", { id: "a" })
    const result = check([invalid, ...records({ id: "a" })])
    assert.strictEqual(result.records[0], invalid)
    assert.deepStrictEqual(statuses(result), ["invalid", "valid"])
    assert.strictEqual(result.stats.skipped, 1)
  })

  it("forgets keys after the TTL, counted from first sight", () => {
    const time = clock()
    const check = make(settings({ key: ["id"], window: { ttlSeconds: 60 } }), { now: time.now })
    check(records({ id: "a" }))
    time.advance(59_000)
    assert.deepStrictEqual(statuses(check(records({ id: "a" }))), ["duplicate"])
    time.advance(1_000)
    assert.deepStrictEqual(
      statuses(check(records({ id: "a" }))),
      ["valid"],
      "seeing it again did not extend the TTL",
    )
  })

  it("stays within maxKeys, evicting the oldest", () => {
    const check = make(settings({ key: ["id"], window: { maxKeys: 3 } }))
    const result = check(records({ id: 1 }, { id: 2 }, { id: 3 }, { id: 4 }, { id: 5 }))
    assert.deepInclude(result.stats, { evicted: 2 })
    assert.deepStrictEqual(result.levels, { windowKeys: 3 })
    assert.deepStrictEqual(statuses(check(records({ id: 1 }, { id: 5 }))), ["valid", "duplicate"])
    assert.strictEqual(check.window.size, 3)
  })

  it("keeps memory bounded over many batches", () => {
    const time = clock()
    const check = make(settings({ key: ["id"], window: { maxKeys: 1000, ttlSeconds: 1 } }), { now: time.now })
    for (let b = 0; b < 50; b++) {
      check(records(...Array.from({ length: 500 }, (_, i) => ({ id: `${b}-${i}` }))))
      time.advance(100)
      assert.isAtMost(check.window.size, 1000)
    }
  })

  it("does not take a replayed batch for duplicates of itself", () => {
    const check = make(settings({ key: ["id"] }))
    const batch = records({ id: "a" }, { id: "b" }, { id: "a" })
    assert.deepStrictEqual(statuses(check(batch)), ["valid", "valid", "duplicate"])
    const replay = check(batch)
    assert.deepStrictEqual(statuses(replay), ["valid", "valid", "duplicate"])
    assert.strictEqual(replay.stats.replayed, 2)
  })

  it("handles an empty batch and odd key values: objects, arrays, booleans and empty strings are no key", () => {
    const check = make(settings({ key: ["id"] }))
    assert.deepStrictEqual(check([]).records, [])
    const result = check(
      records(
        { id: { nested: [1] } },
        { id: { nested: [1] } },
        { id: "ü😀" },
        { id: "ü😀" },
        { id: [1, 2] },
        { id: [1, 2] },
        { id: true },
        { id: true },
        { id: "" },
        { id: "" },
      ),
    )
    assert.deepStrictEqual(statuses(result), [
      "valid",
      "valid",
      "valid",
      "duplicate",
      "valid",
      "valid",
      "valid",
      "valid",
      "valid",
      "valid",
    ])
    assert.strictEqual(result.stats.unkeyed, 8)
  })

  it("takes keys longer than maxKeyBytes for no key, so they cannot fill the window", () => {
    const check = make(settings({ key: ["id"] }), { maxKeyBytes: 8 })
    const result = check(
      records({ id: "123456789" }, { id: "123456789" }, { id: "12345678" }, { id: "12345678" }),
    )
    assert.deepStrictEqual(statuses(result), ["valid", "valid", "valid", "duplicate"])
    assert.strictEqual(result.stats.unkeyed, 2)
    assert.strictEqual(check.window.size, 1)
  })
})

describe("KeyWindow", () => {
  it("spreads long keys that share their beginning and end", () => {
    const ends = "x".repeat(200)
    const keys = Array.from({ length: 1000 }, (_, i) => `${ends}${i}${ends}`)
    const hashes = new Set(keys.map(hashOf))
    assert.isAbove(hashes.size, 990)
  })

  /** The window's contract, spelled out with arrays: first-seen order, size and age bounds. */
  class Model {
    entries: Array<{ key: string; offset: string; at: number; alive: boolean }> = []
    constructor(
      readonly maxKeys: number,
      readonly ttlMs: number,
    ) {}
    lookup(key: string, now: number): string | undefined {
      const entry = this.entries.find((candidate) => candidate.alive && candidate.key === key)
      if (entry === undefined) return undefined
      if (now - entry.at < this.ttlMs) return entry.offset
      entry.alive = false
      return undefined
    }
    remember(key: string, offset: string, now: number): number {
      let evicted = 0
      while (
        this.entries.length > 0 &&
        (this.entries.length >= this.maxKeys || now - this.entries[0]!.at >= this.ttlMs)
      ) {
        if (this.entries.shift()!.alive) evicted++
      }
      this.entries.push({ key, offset, at: now, alive: true })
      return evicted
    }
    get size(): number {
      return this.entries.filter((entry) => entry.alive).length
    }
  }

  it("behaves like its model under any sequence of lookups, inserts and clock moves", () => {
    const step = fc.record({
      key: fc.integer({ min: 0, max: 400 }),
      advance: fc.integer({ min: 0, max: 40 }),
    })
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 300 }),
        fc.integer({ min: 1, max: 2_000 }),
        fc.array(step, { maxLength: 3_000 }),
        (maxKeys, ttlMs, steps) => {
          const window = new KeyWindow(maxKeys, ttlMs)
          const model = new Model(maxKeys, ttlMs)
          let now = 0
          steps.forEach(({ key, advance }, i) => {
            now += advance
            const text = `key-${key}`
            const found = window.lookup(text, now)
            assert.strictEqual(found, model.lookup(text, now))
            if (found === undefined)
              assert.strictEqual(window.remember(text, String(i), now), model.remember(text, String(i), now))
            assert.strictEqual(window.size, model.size)
          })
        },
      ),
      { numRuns: 200 },
    )
  })

  it("finds keys longer than what is hashed in full", () => {
    const window = new KeyWindow(10, 1_000)
    const long = (tail: string) => `${"x".repeat(500)}${tail}`
    window.remember(long("a"), "1", 0)
    assert.strictEqual(window.lookup(long("a"), 1), "1")
    assert.strictEqual(window.lookup(long("b"), 1), undefined)
    assert.strictEqual(window.lookup(`${"y".repeat(250)}${"x".repeat(250)}a`, 1), undefined)
    // Same length and ends, so the same hash: only the comparison of the keys tells them apart.
    assert.strictEqual(window.lookup(`${"x".repeat(200)}z${"x".repeat(299)}a`, 1), undefined)
  })
})

describe("DuplicateCheck on hostile keys", () => {
  it("treats a key nested too deep to serialise as no key", () => {
    let deep: JsonObject = {}
    for (let i = 0; i < 200_000; i++) deep = { d: deep }
    const check = make(settings({ key: ["id"] }))
    const result = check(records({ id: deep }, { id: deep }))
    assert.deepStrictEqual(statuses(result), ["valid", "valid"])
    assert.strictEqual(result.stats.unkeyed, 2)
  })
})
