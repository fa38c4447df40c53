import { assert, describe, it } from "@effect/vitest"
import { Result } from "effect"
import { isJsonObject, type JsonObject } from "../../src/Domain/Record.js"
import {
  changeStream,
  type DebeziumOptions,
  debeziumKey,
  finalTable,
  payloadOf,
} from "../../src/Generator/Debezium.js"
import { resolve, type Values } from "../../src/Generator/Options/Options.js"
import { defaultRecordOptions, encodeValue, type GeneratedRecord } from "../../src/Generator/Records.js"
import { changeEvent } from "../../src/Pipeline/Debezium.js"

const BASE = defaultRecordOptions.baseTime
const options: DebeziumOptions = { rows: 50, deleteRatio: 0.1, tombstoneRatio: 0.5 }
const stream = (seed = 7, count = 5000, o = options) => [...changeStream(seed, BASE, o, count)]
const sample = stream()

const envelope = (m: GeneratedRecord): JsonObject => {
  if (!isJsonObject(m.value)) throw new Error(`message ${m.index} has no envelope`)
  return m.value
}
const rowOf = (value: unknown): JsonObject | null => (isJsonObject(value) ? value : null)

describe("Debezium change stream", () => {
  it("is the same for the same seed, another for another seed", () => {
    assert.deepStrictEqual(stream(), sample)
    assert.notDeepEqual(stream(8, 200), sample.slice(0, 200))
  })

  it("gives exactly `count` messages, indexed in order", () => {
    assert.strictEqual(sample.length, 5000)
    assert.deepStrictEqual(
      sample.map((m) => m.index),
      sample.map((_, i) => i),
    )
  })

  it("follows each row: a create when absent, an update's before is the row as it was, a delete of a stored row", () => {
    const table = new Map<string, JsonObject>()
    for (const m of sample) {
      if (m.kind === "tombstone") continue
      const { op, before, after } = envelope(m)
      const id = String((rowOf(after) ?? rowOf(before))?.id)
      assert.strictEqual(m.key, debeziumKey(Number(id)), `message ${m.index}`)
      if (op === "c") {
        assert.isFalse(table.has(id), `create of stored row ${id}`)
        assert.isNull(before)
      } else assert.deepStrictEqual(before, table.get(id), `message ${m.index}`)
      if (op === "d") {
        assert.strictEqual(m.kind, "delete")
        assert.isNull(after)
        table.delete(id)
      } else {
        assert.include(["c", "u"], op)
        table.set(id, rowOf(after) ?? {})
      }
    }
    assert.deepStrictEqual(finalTable(sample), table)
    for (const id of table.keys()) assert.isTrue(Number(id) >= 1 && Number(id) <= options.rows)
  })

  it("meets the delete ratio, and follows deletes by their tombstone at its ratio, with the delete's key", () => {
    const deletes = sample.filter((m) => m.kind === "delete")
    const tombstones = sample.filter((m) => m.kind === "tombstone")
    const events = sample.length - tombstones.length
    assert.approximately(deletes.length / events, 0.1, 0.015)
    assert.approximately(tombstones.length / deletes.length, 0.5, 0.06)
    for (const t of tombstones) {
      const before = sample[t.index - 1]
      assert.strictEqual(before?.kind, "delete")
      assert.strictEqual(t.key, before?.key)
      assert.isNull(encodeValue(t))
    }
    assert.strictEqual(
      stream(7, 2000, { ...options, tombstoneRatio: 0 }).filter((m) => m.kind === "tombstone").length,
      0,
    )
    const all = stream(7, 2000, { ...options, tombstoneRatio: 1 })
    assert.strictEqual(
      all.filter((m) => m.kind === "tombstone").length,
      all.filter((m, i) => m.kind === "delete" && i < all.length - 1).length,
    )
  })

  it("is read by the service's Debezium parser as it means it: upserts of the row, deletes of the key", () => {
    for (const m of sample.slice(0, 1000)) {
      if (m.kind === "tombstone") continue
      const event = changeEvent(envelope(m), m.key, 512)
      const { after, before } = envelope(m)
      if (m.kind === "delete")
        assert.deepStrictEqual(event, { _tag: "Delete", key: String(rowOf(before)?.id) })
      else assert.deepStrictEqual(event, { _tag: "Upsert", row: rowOf(after) ?? {} })
    }
  })
})

describe("--schemas true", () => {
  const wrapped = stream(7, 5000, { ...options, schemas: true })

  it("is the same stream inside the JSON converter's schema/payload envelope, keys too", () => {
    assert.strictEqual(wrapped.length, sample.length)
    for (const [i, m] of wrapped.entries()) {
      const plain = sample[i]!
      assert.strictEqual(m.kind, plain.kind)
      if (m.kind === "tombstone") continue
      const value = envelope(m)
      assert.deepStrictEqual(Object.keys(value), ["schema", "payload"])
      assert.strictEqual((value.schema as JsonObject).name, "shop.public.orders.Envelope")
      assert.deepStrictEqual(value.payload, envelope(plain))
      const key = JSON.parse(m.key!) as JsonObject
      assert.deepStrictEqual(key.payload, JSON.parse(plain.key!))
      assert.deepStrictEqual(payloadOf(value), envelope(plain))
    }
    assert.deepStrictEqual([...finalTable(wrapped)], [...finalTable(sample)])
  })

  it("is read by the service's Debezium parser as the stream without schemas is", () => {
    for (const [i, m] of wrapped.slice(0, 1000).entries()) {
      if (m.kind === "tombstone") continue
      const plain = sample[i]!
      assert.deepStrictEqual(
        changeEvent(envelope(m), m.key, 512),
        changeEvent(envelope(plain), plain.key, 512),
      )
    }
  })

  it("is a debezium option: true or false, and not for the plain stream", () => {
    const on = resolve({ format: "debezium", schemas: "true" }, {}, () => 1)
    assert.isTrue(Result.isSuccess(on) && on.success.debezium?.schemas === true)
    const bad = resolve({ format: "debezium", schemas: "yes" }, {}, () => 1)
    assert.deepStrictEqual(Result.isFailure(bad) ? bad.failure.map((p) => p.option) : [], ["--schemas"])
    const plain = resolve({ schemas: "true" }, {}, () => 1)
    assert.deepStrictEqual(Result.isFailure(plain) ? plain.failure.map((p) => p.option) : [], ["--schemas"])
  })
})

describe("--format", () => {
  const resolved = (values: Values, env: Record<string, string> = {}) => resolve(values, env, () => 1)

  it("is plain by default; debezium from the flag or PIPELINE__SOURCE_FORMAT, with the stream's defaults", () => {
    const plain = resolved({})
    assert.isTrue(Result.isSuccess(plain) && plain.success.debezium === undefined)
    const flag = resolved({ format: "debezium" })
    assert.deepStrictEqual(Result.isSuccess(flag) ? flag.success.debezium : undefined, {
      rows: 1000,
      deleteRatio: 0.1,
      tombstoneRatio: 1,
      schemas: false,
    })
    const env = resolved({ rows: "10", "tombstone-ratio": "0" }, { PIPELINE__SOURCE_FORMAT: "debezium" })
    assert.deepStrictEqual(Result.isSuccess(env) ? env.success.debezium : undefined, {
      rows: 10,
      deleteRatio: 0.1,
      tombstoneRatio: 0,
      schemas: false,
    })
  })

  it("names every bad value and every flag of the other format", () => {
    const bad = resolved({ format: "debezium", rows: "0", "delete-ratio": "2", "invalid-ratio": "0.2" })
    assert.deepStrictEqual(Result.isFailure(bad) ? bad.failure.map((p) => p.option) : [], [
      "--rows",
      "--delete-ratio",
      "--invalid-ratio",
    ])
    const plain = resolved({ "tombstone-ratio": "0.5" })
    assert.deepStrictEqual(Result.isFailure(plain) ? plain.failure : [], [
      { option: "--tombstone-ratio", message: "--tombstone-ratio does not apply to --format plain" },
    ])
    const unknown = resolved({ format: "avro" })
    assert.deepStrictEqual(Result.isFailure(unknown) ? unknown.failure.map((p) => p.option) : [], [
      "--format",
    ])
  })
})
