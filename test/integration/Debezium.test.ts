/**
 * A Debezium change stream (PIPELINE__SOURCE_FORMAT=debezium, the setting this test is about)
 * through the service, against the real broker and FerretDB: creates, snapshot reads, updates
 * and deletes of 60 rows, half the events in the schema wrapper, each delete followed by its
 * tombstone, ending in exactly the source table's final state; after an instance is SIGKILLed
 * part way and the next one finishes; and again after a new group reads the whole stream once
 * more. Two other settings differ from the defaults, each for the stream's sake: the pipeline
 * is config/examples/minimal.yaml (key `id`: the shipped one's duplicate check would remove
 * every update of a row) and MONGODB__ON_TOMBSTONE=ignore (Debezium's tombstone after a delete
 * would otherwise be a dead letter; the delete has done its work).
 */
import { afterAll, assert, describe, it } from "@effect/vitest"
import {
  committedOffsets,
  createTopic,
  dropDatabase,
  freshNames,
  groupCaughtUp,
  kafka,
  type Names,
  serviceEnv,
  startService,
  summaryOf,
  waitFor,
  withMongo,
} from "./support/Service.js"

const databases: string[] = []
afterAll(async () => {
  for (const db of databases) await dropDatabase(db).catch(() => undefined)
})

interface Row {
  readonly id: string
  readonly amount: number
  readonly version: number
}

/** The stream and the table it leaves, from a seeded walk over 60 rows. */
const changeStream = () => {
  let seed = 2628
  const random = () => {
    seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648
    return seed / 2_147_483_648
  }
  const table = new Map<string, Row>()
  const messages: Array<{ key: string; value: string | null }> = []
  const event = (key: string, envelope: Record<string, unknown>) => {
    const value =
      random() < 0.5 ? envelope : { schema: { type: "struct", name: "orders.Envelope" }, payload: envelope }
    messages.push({ key: JSON.stringify({ id: key }), value: JSON.stringify(value) })
  }
  for (let i = 0; i < 60; i++) {
    const row = { id: `row-${i}`, amount: i + 1, version: 0 }
    table.set(row.id, row)
    event(row.id, { op: i < 20 ? "r" : "c", before: null, after: row, source: { table: "orders" } })
  }
  for (let step = 0; step < 600; step++) {
    const id = `row-${Math.floor(random() * 60)}`
    const before = table.get(id)
    if (before === undefined) {
      const row = { id, amount: Math.floor(random() * 1000) + 1, version: 0 }
      table.set(id, row)
      event(id, { op: "c", before: null, after: row })
    } else if (random() < 0.15) {
      table.delete(id)
      event(id, { op: "d", before, after: null })
      messages.push({ key: JSON.stringify({ id }), value: null })
    } else {
      const after = { ...before, amount: Math.floor(random() * 1000) + 1, version: before.version + 1 }
      table.set(id, after)
      event(id, { op: "u", before, after })
    }
  }
  return { table, messages }
}

const stored = (database: string) =>
  withMongo(async (client) => {
    const documents = await client.db(database).collection<Row & { _id: string }>("orders").find({}).toArray()
    return new Map(documents.map(({ _id, id, amount, version }) => [_id, { id, amount, version }]))
  })

/**
 * drain, waiting for the service to be running first: the group may have caught up before it
 * starts (the SIGKILLed instance wrote everything but its last commit), and a SIGTERM before the
 * service runs is not the shutdown under test.
 */
const finish = async (env: Record<string, string>, names: Names) => {
  const service = startService(env)
  try {
    await waitFor(
      "the service to run",
      async () => service.output().includes('"pipeline running"'),
      60_000,
      service.output,
    )
    await waitFor(
      "the group to commit every offset",
      () => groupCaughtUp(names.group, names.source),
      90_000,
      service.output,
    )
    return { code: await service.stop("SIGTERM"), output: service.output() }
  } finally {
    await service.stop("SIGKILL")
  }
}

const sorted = (table: ReadonlyMap<string, Row>) => [...table].sort(([a], [b]) => a.localeCompare(b))

describe("a Debezium change stream", () => {
  it("ends in the source table's final state, after a SIGKILL and after a whole replay", async () => {
    const names = freshNames("debezium")
    databases.push(names.database)
    await createTopic(names.source, 3)
    const { table, messages } = changeStream()
    assert.isAbove(table.size, 10)
    assert.isBelow(table.size, 60, "some rows end deleted")
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
    await producer.connect()
    try {
      await producer.send({ topic: names.source, acks: -1, messages })
    } finally {
      await producer.disconnect()
    }
    const env = serviceEnv(names, {
      PIPELINE__SOURCE_FORMAT: "debezium",
      PIPELINE__FILE: "config/examples/minimal.yaml",
      MONGODB__ON_TOMBSTONE: "ignore",
    })

    // The instance to be SIGKILLed has the shortest session timeout allowed (6 s), so that the next
    // one gets the partitions in seconds rather than after the default 30 s.
    const first = startService({ ...env, KAFKA__SESSION_TIMEOUT_SECONDS: "6" })
    try {
      await waitFor(
        "the first instance to commit something",
        async () => [...(await committedOffsets(names.group, names.source)).values()].some((o) => o > 0),
        60_000,
        first.output,
      )
    } finally {
      await first.stop("SIGKILL")
    }
    const second = await finish(env, names)
    assert.strictEqual(second.code, 0, second.output)
    assert.deepStrictEqual(sorted(await stored(names.database)), sorted(table))

    const again = { ...names, group: `${names.group}-again` }
    const replay = await finish({ ...env, KAFKA__CONSUMER_GROUP: again.group }, again)
    assert.strictEqual(replay.code, 0, replay.output)
    assert.deepStrictEqual(sorted(await stored(names.database)), sorted(table))
    const summary = summaryOf(replay.output) ?? {}
    assert.strictEqual(summary.consumed, messages.length)
    assert.strictEqual(summary.deadLettered, 0)
    assert.strictEqual(
      (summary.valid ?? 0) + (summary.tombstonesApplied ?? 0) + (summary.tombstonesIgnored ?? 0),
      messages.length,
    )
  })
})
