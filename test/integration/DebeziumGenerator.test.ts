/**
 * The generator's change stream (`--format debezium`) through the service, against the real
 * broker and FerretDB: 1,500 messages of creates, updates and deletes over 100 rows, every delete
 * followed by its tombstone, end in MongoDB as the table the stream leaves, and nothing is
 * dead-lettered; without schemas and with them (`--schemas true`: every key and value inside the
 * JSON converter's schema/payload envelope). The service runs at its defaults but for three settings, each for the stream's
 * sake: PIPELINE__SOURCE_FORMAT=debezium (what the stream is), the pipeline
 * config/examples/minimal.yaml (key `id`, the table's key; the shipped pipeline's duplicate check
 * would remove every update of a row) and MONGODB__ON_TOMBSTONE=ignore (the tombstone after a
 * delete would otherwise be a dead letter; the delete has done its work).
 */
import { afterAll, assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { main } from "../../src/Generator/Cli.js"
import { changeStream, finalTable } from "../../src/Generator/Debezium.js"
import { defaultRecordOptions } from "../../src/Generator/Records.js"
import type { Terminal } from "../../src/Generator/Run.js"
import {
  createTopic,
  drain,
  dropDatabase,
  freshNames,
  serviceEnv,
  summaryOf,
  withMongo,
} from "./support/Service.js"
import { kafkaBrokers } from "./support/Stack.js"

const databases: string[] = []
afterAll(async () => {
  for (const db of databases) await dropDatabase(db).catch(() => undefined)
})

const SEED = 2626
const TOTAL = 1500
const ROWS = 100

const sorted = <A>(table: ReadonlyMap<string, A>) => [...table].sort(([a], [b]) => a.localeCompare(b))

describe.each([
  ["without schemas", false],
  ["with schemas", true],
])("the generator's Debezium stream through the service, %s", (_, schemas) => {
  it("ends in MongoDB as the table the stream leaves", async () => {
    const names = freshNames(`debezium-gen${schemas ? "-schemas" : ""}`)
    databases.push(names.database)
    await createTopic(names.source, 3)
    const err: Array<string> = []
    const terminal: Terminal = { out: () => {}, err: (s) => void err.push(s), live: false }
    const argv = ["--output", "kafka", "--bootstrap-servers", kafkaBrokers.join(","), "--topic", names.source]
    argv.push("--format", "debezium", "--rows", String(ROWS), "--rate", "0", "--total", String(TOTAL))
    argv.push("--seed", String(SEED))
    if (schemas) argv.push("--schemas", "true")
    await Effect.runPromise(main(argv, {}, terminal))
    assert.include(err.join(""), `generate: done, ${TOTAL} messages`)

    const messages = [
      ...changeStream(
        SEED,
        defaultRecordOptions.baseTime,
        { rows: ROWS, deleteRatio: 0.1, tombstoneRatio: 1, schemas },
        TOTAL,
      ),
    ]
    const table = finalTable(messages)
    assert.isAbove(table.size, ROWS / 2)
    assert.isBelow(table.size, ROWS, "some rows end deleted")

    const env = serviceEnv(names, {
      PIPELINE__SOURCE_FORMAT: "debezium",
      PIPELINE__FILE: "config/examples/minimal.yaml",
      MONGODB__ON_TOMBSTONE: "ignore",
    })
    const { code, output } = await drain(env, names)
    assert.strictEqual(code, 0, output)
    const stored = await withMongo(async (client) => {
      const documents = await client.db(names.database).collection("orders").find({}).toArray()
      return new Map(documents.map(({ _id, _kafka, ...row }) => [String(_id), row]))
    })
    assert.deepStrictEqual(sorted(stored), sorted(table))
    const summary = summaryOf(output) ?? {}
    assert.strictEqual(summary.consumed, TOTAL)
    assert.strictEqual(summary.deadLettered, 0)
    assert.strictEqual(summary.tombstonesIgnored, messages.filter((m) => m.kind === "tombstone").length)
  })
})
