/**
 * The stack's FerretDB carries two patches (stack/ferretdb/README.md): an update command of
 * many statements no longer holds a pooled SQLite connection per statement (which deadlocked
 * the server at about 100), and a lookup by _id uses the _id index instead of a full scan.
 * Every command has a time limit, so a deadlocked server fails these tests instead of hanging.
 */
import { afterAll, assert, describe, it } from "@effect/vitest"
import { MongoClient } from "mongodb"
import { ferretBuild } from "../../scripts/stack.js"
import { mongoUri, unique } from "./support/Stack.js"

const client = new MongoClient(mongoUri, { socketTimeoutMS: 20_000 })

// A database per test: a deadlock holds its whole database, and would take the next test down too.
const databases: string[] = []
const collection = () => {
  const database = unique("ferretpatch").replace(/-/g, "_")
  databases.push(database)
  return client.db(database).collection<{ _id: string; v: number }>("docs")
}

afterAll(async () => {
  for (const database of databases) {
    await client
      .db(database)
      .dropDatabase()
      .catch(() => undefined)
  }
  await client.close()
})

const ids = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}-${i}`)

/** One `update` command of replaceOne upserts on existing _ids, as the MongoDB sink sends on a replay. */
const replaceAll = (c: ReturnType<typeof collection>, keys: ReadonlyArray<string>, v: number) =>
  c.bulkWrite(
    keys.map((_id) => ({ replaceOne: { filter: { _id }, replacement: { v }, upsert: true } })),
    { ordered: false },
  )

describe("the stack's patched FerretDB", () => {
  it("runs the current build of stack/ferretdb", async () => {
    const info = await client.db("admin").command({ buildInfo: 1 })
    if (!("ferretdbVersion" in info)) return // a real MongoDB has neither the bugs nor the patches
    assert.strictEqual(
      info.gitVersion,
      `stack-${ferretBuild()}`,
      `the FerretDB on ${mongoUri} was not built from the current stack/ferretdb: npm run stack -- restart mongodb`,
    )
  })

  it("completes an update command of 150 replace statements on existing _ids", async () => {
    const c = collection()
    const keys = ids("a", 150)
    await c.insertMany(keys.map((_id) => ({ _id, v: 1 })))
    const result = await replaceAll(c, keys, 2)
    assert.strictEqual(result.matchedCount, 150)
    assert.strictEqual(result.modifiedCount, 150)
    assert.strictEqual(await c.countDocuments({ v: 2 }), 150)
  })

  it("completes two concurrent update commands of 100 replace statements each", async () => {
    const c = collection()
    const [left, right] = [ids("l", 100), ids("r", 100)]
    await c.insertMany([...left, ...right].map((_id) => ({ _id, v: 1 })))
    const results = await Promise.all([replaceAll(c, left, 2), replaceAll(c, right, 3)])
    assert.deepStrictEqual(
      results.map((r) => r.modifiedCount),
      [100, 100],
    )
    assert.strictEqual(await c.countDocuments({ v: 2 }), 100)
    assert.strictEqual(await c.countDocuments({ v: 3 }), 100)
  })

  it("finds a document by _id through the _id index, not a scan", async () => {
    const c = collection()
    await c.insertMany(ids("x", 20).map((_id) => ({ _id, v: 1 })))
    const plan = await c.find({ _id: "x-7" }).explain()
    if (!("Plan" in plan.queryPlanner)) return // a real MongoDB explains itself differently
    const steps = (plan.queryPlanner as { Plan: ReadonlyArray<string> }).Plan
    assert.isTrue(
      steps.some((s) => /SEARCH .* USING INDEX/.test(s)),
      `SQLite plan: ${steps.join("; ")}`,
    )
    assert.deepStrictEqual(await c.findOne({ _id: "x-7" }), { _id: "x-7", v: 1 })
  })
})
