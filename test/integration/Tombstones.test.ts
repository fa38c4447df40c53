/**
 * Tombstones through the service, against the real broker and FerretDB, under each
 * MONGODB__ON_TOMBSTONE (the setting these tests are about; every other setting is the
 * default): generated orders, then a tombstone for a third of the valid keys, one for a key
 * never written and one without a key. With `delete` MongoDB ends without the deleted keys and
 * the sink topic ends each of them with a tombstone; with `ignore` and `dead_letter` MongoDB keeps
 * every valid key, and `dead_letter` sends every tombstone to the dead-letter topic. The
 * shutdown summary accounts for every message.
 */
import { afterAll, assert, describe, it } from "@effect/vitest"
import { defaultRecordOptions, generate } from "../../src/Generator/Records.js"
import { header } from "../../src/Pipeline/Messages.js"
import {
  createTopic,
  drain,
  dropDatabase,
  freshNames,
  kafka,
  mongoIds,
  produce,
  readTopic,
  serviceEnv,
  summaryOf,
} from "./support/Service.js"

const databases: string[] = []
afterAll(async () => {
  for (const db of databases) await dropDatabase(db).catch(() => undefined)
})

const records = [...generate({ ...defaultRecordOptions, seed: 2626, malformedRatio: 0.02 }, 0, 300)]
const validKeys = [...new Set(records.filter((r) => r.kind === "valid").map((r) => r.key!))].sort()
const deletedKeys = validKeys.filter((_, i) => i % 3 === 0)
const tombstoneKeys: ReadonlyArray<string | null> = [...deletedKeys, "never-written", null]
const turnedAway = records
  .filter((r) => r.kind === "invalid" || r.kind === "malformed")
  .map((r) => String(r.index))

/** The orders, then the tombstones (after them: each key's tombstone lands later in its partition). */
const produceAll = async (topic: string) => {
  await produce(topic, records)
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
  await producer.connect()
  try {
    await producer.send({
      topic,
      acks: -1,
      messages: tombstoneKeys.map((key, i) => ({ key, value: null, headers: { "x-index": `t${i}` } })),
    })
  } finally {
    await producer.disconnect()
  }
}

const run = async (onTombstone: string | undefined, extra: Record<string, string> = {}) => {
  const names = freshNames(`tombstones-${onTombstone ?? "default"}`)
  databases.push(names.database)
  await createTopic(names.source, 3)
  await produceAll(names.source)
  const service = await drain(
    serviceEnv(names, {
      ...(onTombstone === undefined ? {} : { MONGODB__ON_TOMBSTONE: onTombstone }),
      ...extra,
    }),
    names,
  )
  assert.strictEqual(service.code, 0, service.output)
  const summary = summaryOf(service.output) ?? {}
  const count = (name: string) => summary[name] ?? Number.NaN
  assert.strictEqual(count("consumed"), records.length + tombstoneKeys.length)
  assert.strictEqual(
    count("valid") +
      count("duplicates") +
      count("filtered") +
      count("tombstonesApplied") +
      count("tombstonesIgnored") +
      count("deadLettered"),
    count("consumed"),
    "every message ends in exactly one place",
  )
  return {
    count,
    ids: [...(await mongoIds(names.database))].sort(),
    sink: await readTopic(names.sink),
    dlq: await readTopic(names.dlq),
  }
}

describe("tombstones through the service", () => {
  it.each([
    ["at least once", {}],
    // The delivery mode is the other setting here: the tombstones go in each batch's transaction.
    ["exactly once", { KAFKA__DELIVERY: "exactly_once" }],
  ])(
    "delete (%s): the tombstoned keys leave MongoDB, and the sink topic carries their tombstones last",
    async (_, extra) => {
      const { count, ids, sink, dlq } = await run("delete", extra)
      assert.isAbove(deletedKeys.length, 10)
      assert.deepStrictEqual(
        ids,
        validKeys.filter((k) => !deletedKeys.includes(k)),
      )
      assert.strictEqual(count("tombstonesApplied"), deletedKeys.length + 1)
      // The last message of each key on the sink topic (what compaction keeps) is its tombstone.
      const last = new Map(sink.map((m) => [m.key, m]))
      for (const key of deletedKeys) assert.isNull(last.get(key)?.value, `the last message of ${key}`)
      assert.isNull(last.get("never-written")?.value)
      assert.strictEqual(
        sink.filter((m) => m.value === null).length,
        deletedKeys.length + 1,
        "one tombstone per keyed tombstone",
      )
      const keyless = dlq.filter((m) => m.headers["x-index"]?.startsWith("t"))
      assert.strictEqual(keyless.length, 1)
      assert.strictEqual(keyless[0]!.headers[header.errorStage], "parse")
      assert.include(keyless[0]!.headers[header.errorReasons], "tombstone_key")
      assert.deepStrictEqual(
        dlq
          .map((m) => m.headers["x-index"]!)
          .filter((i) => !i.startsWith("t"))
          .sort(),
        [...turnedAway].sort(),
      )
    },
  )

  it("ignore: tombstones are counted and MongoDB keeps every key", async () => {
    const { count, ids, sink, dlq } = await run("ignore")
    assert.deepStrictEqual(ids, validKeys)
    assert.strictEqual(count("tombstonesIgnored"), tombstoneKeys.length)
    assert.strictEqual(sink.filter((m) => m.value === null).length, 0)
    assert.deepStrictEqual(dlq.map((m) => m.headers["x-index"]!).sort(), [...turnedAway].sort())
  })

  it("dead_letter (the default): every tombstone goes to the dead-letter topic", async () => {
    const { count, ids, sink, dlq } = await run(undefined)
    assert.deepStrictEqual(ids, validKeys)
    assert.strictEqual(count("tombstonesApplied") + count("tombstonesIgnored"), 0)
    assert.strictEqual(sink.filter((m) => m.value === null).length, 0)
    const tombstones = dlq.filter((m) => m.headers["x-index"]?.startsWith("t"))
    assert.strictEqual(tombstones.length, tombstoneKeys.length)
    for (const m of tombstones) assert.include(m.headers[header.errorReasons], '"rule":"empty"')
  })
})
