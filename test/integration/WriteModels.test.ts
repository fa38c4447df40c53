/**
 * MONGODB__WRITE_MODEL through the service, against the real broker and FerretDB (the setting
 * these tests are about; every other setting is the default): a quarter of the keys are stored
 * before the service starts, with a field the records do not have and an e-mail they do. Then
 * `replace` (the default) leaves the records as they are, `merge` the records plus the stored
 * field, `insert` the stored documents untouched; every valid key is in MongoDB and on the sink
 * topic whatever the model, and the shutdown summary accounts for every message. With `insert`
 * and MONGODB__ON_EXISTING=dead_letter (the other setting under test) the records of the stored
 * keys are dead letters too.
 */
import { afterAll, assert, describe, it } from "@effect/vitest"
import { defaultRecordOptions, generate } from "../../src/Generator/Records.js"
import { header } from "../../src/Pipeline/Messages.js"
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

const records = [...generate({ ...defaultRecordOptions, seed: 2627 }, 0, 300)]
const validKeys = [...new Set(records.filter((r) => r.kind === "valid").map((r) => r.key!))].sort()
const storedKeys = validKeys.filter((_, i) => i % 4 === 0)
const seedEmail = "stored@example.com"

type Stored = { _id: string; [field: string]: unknown }

const run = async (writeModel: string | undefined, extra: Record<string, string> = {}) => {
  const names = freshNames(`writemodel-${writeModel ?? "default"}${extra.MONGODB__ON_EXISTING ?? ""}`)
  databases.push(names.database)
  await createTopic(names.source, 3)
  await withMongo((client) =>
    client
      .db(names.database)
      .collection<Stored>("orders")
      .insertMany(storedKeys.map((_id) => ({ _id, loyalty: "gold", email: seedEmail }))),
  )
  await produce(names.source, records)
  const service = await drain(
    serviceEnv(names, writeModel === undefined ? extra : { MONGODB__WRITE_MODEL: writeModel, ...extra }),
    names,
  )
  assert.strictEqual(service.code, 0, service.output)
  const summary = summaryOf(service.output) ?? {}
  const count = (name: string) => summary[name] ?? Number.NaN
  assert.strictEqual(count("consumed"), records.length)
  assert.strictEqual(
    count("valid") + count("duplicates") + count("filtered") + count("deadLettered"),
    count("consumed"),
  )
  const documents = await withMongo((client) =>
    client.db(names.database).collection<Stored>("orders").find({}).toArray(),
  )
  assert.deepStrictEqual(documents.map((d) => d._id).sort(), validKeys)
  const sink = await readTopic(names.sink)
  assert.deepStrictEqual(
    sink.map((m) => m.key!).sort(),
    validKeys,
    "each valid key once on the sink topic, whatever the model",
  )
  return { documents: new Map(documents.map((d) => [d._id, d])), names, summary }
}

describe("write models through the service", () => {
  it("stores a quarter of the keys first", () => assert.isAbove(storedKeys.length, 10))

  it("replace (the default): a stored document becomes the record", async () => {
    const { documents } = await run(undefined)
    for (const key of storedKeys) {
      const d = documents.get(key)!
      assert.notProperty(d, "loyalty", key)
      assert.notStrictEqual(d.email, seedEmail)
      assert.isNumber(d.amount)
    }
  })

  it("merge: a stored document gets the record's fields and keeps its own", async () => {
    const { documents } = await run("merge")
    for (const key of storedKeys) {
      const d = documents.get(key)!
      assert.strictEqual(d.loyalty, "gold", key)
      assert.notStrictEqual(d.email, seedEmail)
      assert.isNumber(d.amount)
    }
  })

  it("insert: a stored document stays as it was; new keys are written", async () => {
    const { documents } = await run("insert")
    for (const key of storedKeys)
      assert.deepStrictEqual(documents.get(key), { _id: key, loyalty: "gold", email: seedEmail })
    for (const key of validKeys.filter((k) => !storedKeys.includes(k)))
      assert.isNumber(documents.get(key)!.amount)
  })

  it("insert, MONGODB__ON_EXISTING=dead_letter: the records of stored keys are dead letters, with the reason", async () => {
    const { documents, names } = await run("insert", { MONGODB__ON_EXISTING: "dead_letter" })
    for (const key of storedKeys)
      assert.deepStrictEqual(documents.get(key), { _id: key, loyalty: "gold", email: seedEmail })
    const refused = (await readTopic(names.dlq)).filter(
      (m) => m.headers[header.errorStage] === "mongodb_sink",
    )
    assert.deepStrictEqual(refused.map((m) => m.key!).sort(), storedKeys)
    for (const m of refused) {
      const reasons = JSON.parse(m.headers[header.errorReasons] ?? "[]") as Array<{
        rule: string
        message: string
      }>
      assert.strictEqual(reasons[0]?.rule, "existing_key")
      assert.include(reasons[0]?.message, "MONGODB__ON_EXISTING=dead_letter")
    }
  })
})
