/**
 * The branched example (config/examples/branched.yaml) against the real broker and FerretDB,
 * at the service's default settings: MongoDB holds the full record of every valid key, the
 * sink topic exactly the projected records of the paid orders, the dead-letter topic every
 * invalid and malformed message, and the summary accounts for every message: consumed =
 * valid + dead-lettered + duplicates + filtered.
 */
import { afterAll, assert, describe, it } from "@effect/vitest"
import { defaultRecordOptions, type GeneratedRecord, generate } from "../../src/Generator/Records.js"
import {
  createTopic,
  drain,
  dropDatabase,
  freshNames,
  produce,
  readTopic,
  serviceEnv,
  summaryOf,
  withMongo,
} from "./support/Service.js"

const databases: string[] = []
afterAll(async () => {
  for (const db of databases) await dropDatabase(db).catch(() => undefined)
})

const statusOf = (r: GeneratedRecord) =>
  r.value instanceof Uint8Array ? undefined : (r.value as { status?: unknown }).status

describe("a branched pipeline", () => {
  it("writes full records to MongoDB and only the paid orders, projected, to the sink topic", async () => {
    const names = freshNames("branched")
    databases.push(names.database)
    await createTopic(names.source, 3)
    const records = [...generate({ ...defaultRecordOptions, seed: 1717, malformedRatio: 0.02 }, 0, 1500)]
    await produce(names.source, records)
    // The pipeline file is what this test is about; every other setting is the default.
    const service = await drain(serviceEnv(names, { PIPELINE__FILE: "config/examples/branched.yaml" }), names)
    assert.strictEqual(service.code, 0, service.output)

    const valid = records.filter((r) => r.kind === "valid")
    const validKeys = [...new Set(valid.map((r) => r.key!))].sort()
    const paidKeys = [...new Set(valid.filter((r) => statusOf(r) === "paid").map((r) => r.key!))].sort()
    assert.isAbove(paidKeys.length, 0)
    assert.isBelow(paidKeys.length, validKeys.length)

    const documents = await withMongo((client) =>
      client
        .db(names.database)
        .collection<{ _id: string; [field: string]: unknown }>("orders")
        .find({})
        .toArray(),
    )
    assert.deepStrictEqual(documents.map((d) => d._id).sort(), validKeys)
    for (const d of documents) {
      // Both branches' work is in the record: standardization's fields and conversion's.
      assert.match(String(d.email), /^[^A-Z]+$/)
      assert.isNumber(d.amount)
      assert.isString(d.first_name)
      assert.isString(d.country)
    }

    const sink = await readTopic(names.sink)
    assert.deepStrictEqual(sink.map((m) => m.key!).sort(), paidKeys, "each paid order once, nothing else")
    for (const m of sink) {
      const value = JSON.parse(m.value!.toString()) as Record<string, unknown>
      assert.deepStrictEqual(Object.keys(value).sort(), [
        "amount",
        "created_at",
        "currency",
        "event_id",
        "status",
      ])
      assert.strictEqual(value.status, "paid")
      assert.strictEqual(value.event_id, m.key)
    }

    const dead = (await readTopic(names.dlq)).map((m) => m.headers["x-index"]!)
    const expectedDead = records
      .filter((r) => r.kind === "invalid" || r.kind === "malformed")
      .map((r) => String(r.index))
    assert.deepStrictEqual(dead.sort(), expectedDead.sort())

    const logged = summaryOf(service.output) ?? {}
    const count = (name: string) => logged[name] ?? Number.NaN
    const summary = {
      consumed: count("consumed"),
      valid: count("valid"),
      deadLettered: count("deadLettered"),
      duplicates: count("duplicates"),
      filtered: count("filtered"),
    }
    assert.strictEqual(summary.consumed, records.length)
    assert.strictEqual(summary.filtered, 0, "MongoDB reads every valid record, so none is filtered")
    assert.strictEqual(
      summary.valid + summary.deadLettered + summary.duplicates + summary.filtered,
      summary.consumed,
    )
    assert.strictEqual(summary.duplicates, records.filter((r) => r.kind === "duplicate").length)
  })
})
