/**
 * A MongoDB sink's own write settings in the pipeline file, and deletes within a batch, through
 * the service against the real broker and FerretDB. Every setting is the default except the
 * ones each test is about (the sink's settings in a copy of the shipped pipeline, and
 * MONGODB__WRITE_MODEL / MONGODB__ON_TOMBSTONE where said).
 */
import { randomUUID } from "node:crypto"
import { readFile, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, assert, describe, it } from "@effect/vitest"
import type { JsonObject } from "../../src/Domain/Record.js"
import { defaultRecordOptions, type GeneratedRecord, generate } from "../../src/Generator/Records.js"
import {
  createTopic,
  drain,
  dropDatabase,
  freshNames,
  kafka,
  produce,
  readTopic,
  root,
  serviceEnv,
  startService,
  summaryOf,
  withMongo,
} from "./support/Service.js"

const databases: string[] = []
afterAll(async () => {
  for (const db of databases) await dropDatabase(db).catch(() => undefined)
})

type Stored = { _id: string; [field: string]: unknown }

const shippedSink = "settings: { writeConcern: majority, journal: true, ordered: false }"

/** The shipped pipeline with the MongoDB sink's settings replaced by `settings` (YAML flow map). */
const pipelineWith = async (name: string, settings: string): Promise<string> => {
  const shipped = await readFile(join(root, "config/pipeline.yaml"), "utf8")
  assert.include(shipped, shippedSink)
  const file = join(tmpdir(), `${name}-${randomUUID()}.yaml`)
  await writeFile(file, shipped.replace(shippedSink, `settings: ${settings}`))
  return file
}

const documentsOf = (database: string) =>
  withMongo((client) => client.db(database).collection<Stored>("orders").find({}).toArray())

describe("a MongoDB sink's settings in the pipeline file", () => {
  it("documentKey and newerBy: one document per customer e-mail, the version with the latest created_at, in whatever order and partition they arrive", async () => {
    const names = freshNames("sink-business-key")
    databases.push(names.database)
    await createTopic(names.source, 3)
    // 240 orders of 12 customers, keyed by event_id (so each customer's orders spread over the
    // three partitions), with created_at times in a shuffled order.
    const generated = [
      ...generate({ ...defaultRecordOptions, seed: 4242, pattern: "valid", duplicateRatio: 0 }, 0, 240),
    ]
    const base = Date.parse("2026-11-01T00:00:00Z")
    const step = (i: number) => (i * 7919) % generated.length
    const records: Array<GeneratedRecord> = generated.map((r, i) => {
      const value = structuredClone(r.value) as JsonObject
      ;(value.customer as JsonObject).email = `customer${i % 12}@example.com`
      value.created_at = new Date(base + step(i) * 60_000).toISOString()
      return { ...r, value }
    })
    const newest = new Map<string, GeneratedRecord>()
    for (const [i, r] of records.entries()) {
      const email = `customer${i % 12}@example.com`
      const known = newest.get(email)
      if (known === undefined || step(i) > step(known.index)) newest.set(email, r)
    }
    await produce(names.source, records)
    const pipelineFile = await pipelineWith(
      names.source,
      "{ writeModel: merge, documentKey: email, newerBy: created_at }",
    )
    const service = await drain(serviceEnv(names, { PIPELINE__FILE: pipelineFile }), names)
    assert.strictEqual(service.code, 0, service.output)
    const summary = summaryOf(service.output) ?? {}
    assert.strictEqual(summary.consumed, records.length)
    assert.strictEqual(summary.valid, records.length, service.output)

    const documents = await documentsOf(names.database)
    assert.deepStrictEqual(documents.map((d) => d._id).sort(), [...newest.keys()].sort())
    for (const d of documents) {
      const expected = newest.get(d._id)!
      assert.strictEqual(d.event_id, expected.key, `${d._id}: the order with the latest created_at`)
      assert.strictEqual(d.created_at, (expected.value as JsonObject).created_at)
    }
    // The sink topic carries every order under its record key.
    assert.strictEqual((await readTopic(names.sink)).length, records.length)
  })

  it("a documentKey different from the pipeline's key with MONGODB__ON_TOMBSTONE=delete is refused at start, naming both", async () => {
    const names = freshNames("sink-key-conflict")
    const pipelineFile = await pipelineWith(names.source, "{ documentKey: [email] }")
    const service = startService(
      serviceEnv(names, { PIPELINE__FILE: pipelineFile, MONGODB__ON_TOMBSTONE: "delete" }),
    )
    const code = await Promise.race([
      service.exited,
      new Promise<string>((done) => setTimeout(() => done("still running after 30 s"), 30_000)),
    ]).finally(() => service.stop("SIGKILL"))
    assert.strictEqual(code, 2, service.output())
    assert.include(service.output(), "documentKey (email) differs from the pipeline's key (event_id)")
    assert.include(service.output(), "MONGODB__ON_TOMBSTONE=delete")
  })
})

describe("a key deleted and written again in one batch", () => {
  const run = async (writeModel: "insert" | "merge") => {
    const names = freshNames(`sink-delete-rewrite-${writeModel}`)
    databases.push(names.database)
    await createTopic(names.source, 1)
    const [first, second] = [...generate({ ...defaultRecordOptions, seed: 99, pattern: "valid" }, 0, 2)]
    const key = first!.key!
    // Stored before: the key's document with a field the records do not have.
    await withMongo((client) =>
      client.db(names.database).collection<Stored>("orders").insertOne({ _id: key, loyalty: "gold" }),
    )
    // One partition, one batch: the tombstone, then the key written again (the second record, given the key).
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
    await producer.connect()
    try {
      await producer.send({ topic: names.source, acks: -1, messages: [{ key, value: null }] })
    } finally {
      await producer.disconnect()
    }
    const again = structuredClone(second!.value) as JsonObject
    again.event_id = key
    await produce(names.source, [{ ...second!, key, value: again }])
    const service = await drain(
      serviceEnv(names, { MONGODB__WRITE_MODEL: writeModel, MONGODB__ON_TOMBSTONE: "delete" }),
      names,
    )
    assert.strictEqual(service.code, 0, service.output)
    const documents = await documentsOf(names.database)
    assert.strictEqual(documents.length, 1, JSON.stringify(documents))
    const d = documents[0]!
    assert.strictEqual(d._id, key)
    assert.notProperty(d, "loyalty", "nothing the document held before the delete survives")
    assert.strictEqual(d.amount, ((again.order as JsonObject).amount as number) ?? Number.NaN)
  }

  it("insert: the document is written again", () => run("insert"))
  it("merge: the document is the record alone", () => run("merge"))
})
