/**
 * The MongoDB sink against the real server: new keys are inserted, replayed or newer keys are
 * replaced (never duplicated), data errors are rejected per document while the rest of the
 * batch is written, and an unreachable server is a retryable failure of the whole write.
 */
import { afterAll, assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { MongoClient } from "mongodb"
import { isDataWriteError, MongoWriteError } from "../../src/Mongo/Errors.js"
import { type StoredDocument, upsertAll } from "../../src/Mongo/MongoSink.js"
import { mongoUri, unique } from "./support/Stack.js"

const client = new MongoClient(mongoUri)
const database = unique("sinktest").replace(/-/g, "_")
const collection = () => client.db(database).collection<StoredDocument>(unique("docs"))
const majority = { w: "majority" as const, journal: true }

afterAll(async () => {
  await client
    .db(database)
    .dropDatabase()
    .catch(() => undefined)
  await client.close()
})

const docs = (ids: ReadonlyArray<string>, extra: Record<string, unknown> = {}) =>
  ids.map((id) => ({ id, document: { event_id: id, email: `${id}@example.com`, ...extra } }))

describe("MongoSink.upsertAll", () => {
  it.effect("inserts new keys and replaces existing ones, so a replay leaves one document per key", () =>
    Effect.gen(function* () {
      const c = collection()
      const first = yield* upsertAll(c, docs(["a", "b", "c"], { v: 1 }), majority)
      assert.deepStrictEqual(first, [])
      const replay = yield* upsertAll(c, docs(["b", "c", "d"], { v: 2 }), majority)
      assert.deepStrictEqual(replay, [])
      const stored = yield* Effect.promise(() => c.find({}).sort({ _id: 1 }).toArray())
      assert.deepStrictEqual(
        stored.map((d) => [d._id, d.v]),
        [
          ["a", 1],
          ["b", 2],
          ["c", 2],
          ["d", 2],
        ],
      )
    }),
  )

  it.effect("rejects only the documents the server will never take, and writes the rest", () =>
    Effect.gen(function* () {
      const c = collection()
      yield* Effect.promise(() => c.createIndex({ email: 1 }, { unique: true }))
      yield* upsertAll(c, docs(["x"]), majority)
      const batch = [
        ...docs(["p", "q"]),
        { id: "dollar", document: { event_id: "dollar", $where: "1" } },
        // Same e-mail as "x" under another key: clashes with the user's own unique index.
        { id: "clash", document: { event_id: "clash", email: "x@example.com" } },
        ...docs(["r"]),
      ]
      const rejected = yield* upsertAll(c, batch, majority)
      // The sink's callers check field names first (Pipeline/Admission.ts); given one anyway, the
      // server's own refusal (FerretDB: FailedToParse; MongoDB: DollarPrefixedFieldName) isolates it.
      assert.deepStrictEqual(
        rejected.map((r) => [batch[r.index]!.id, isDataWriteError(r.code) || r.code === 11000]),
        [
          ["dollar", true],
          ["clash", true],
        ],
      )
      assert.strictEqual(rejected[1]!.code, 11000)
      assert.include(rejected[0]!.message, "$where")
      const ids = yield* Effect.promise(() => c.find({}).sort({ _id: 1 }).toArray())
      assert.deepStrictEqual(
        ids.map((d) => d._id),
        ["p", "q", "r", "x"],
      )
    }),
  )

  it.effect("fails retryably when the server cannot be reached", () =>
    Effect.gen(function* () {
      const nowhere = new MongoClient("mongodb://127.0.0.1:1/", { serverSelectionTimeoutMS: 300 })
      const error = yield* Effect.flip(
        upsertAll(nowhere.db("x").collection<StoredDocument>("y"), docs(["a"]), majority),
      )
      yield* Effect.promise(() => nowhere.close())
      assert.instanceOf(error, MongoWriteError)
      assert.isTrue(error.retryable)
    }),
  )
})
