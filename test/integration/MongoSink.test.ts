/**
 * The MongoDB sink against the real server: new keys are inserted, replayed or newer keys are
 * replaced (never duplicated), an older write arriving late changes nothing (monotonic writes),
 * data errors are rejected per document while the rest of the batch is written, and an
 * unreachable server is a retryable failure of the whole write. Each write runs both ways the
 * service uses: the read before the replace alone (as on FerretDB) and with the position
 * condition in the replace's filter (as on MongoDB).
 */
import { afterAll, assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { MongoClient } from "mongodb"
import { isDataWriteError, MongoWriteError } from "../../src/Mongo/Errors.js"
import { type StoredDocument, type UpsertOptions, upsertAll } from "../../src/Mongo/MongoSink.js"
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

const at = (offset: number, partition = 0) => ({ topic: "orders", partition, offset: String(offset) })

const docs = (ids: ReadonlyArray<string>, extra: Record<string, unknown> = {}, offset = 0, partition = 0) =>
  ids.map((id, i) => ({
    id,
    document: { event_id: id, email: `${id}@example.com`, ...extra },
    position: at(offset + i, partition),
  }))

const byRead: UpsertOptions = { replaceBatchSize: 25, conditionalReplace: false }
const byFilter: UpsertOptions = { replaceBatchSize: 25, conditionalReplace: true }

const stored = (c: ReturnType<typeof collection>) =>
  Effect.promise(() => c.find({}).sort({ _id: 1 }).toArray())

describe.each([
  ["read before the replace", byRead],
  ["position in the filter", byFilter],
])("MongoSink.upsertAll, %s", (_, options) => {
  it.effect("inserts new keys and replaces existing ones, so a replay leaves one document per key", () =>
    Effect.gen(function* () {
      const c = collection()
      const first = yield* upsertAll(c, docs(["a", "b", "c"], { v: 1 }), majority, options)
      assert.deepStrictEqual(first, { refused: [], stale: [], skipped: [] })
      const replay = yield* upsertAll(c, docs(["b", "c", "d"], { v: 2 }, 10), majority, options)
      assert.deepStrictEqual(replay, { refused: [], stale: [], skipped: [] })
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
      yield* upsertAll(c, docs(["x"]), majority, options)
      const batch = [
        ...docs(["p", "q"], {}, 1),
        { id: "dollar", document: { event_id: "dollar", $where: "1" }, position: at(3) },
        // Same e-mail as "x" under another key: clashes with the user's own unique index.
        { id: "clash", document: { event_id: "clash", email: "x@example.com" }, position: at(4) },
        ...docs(["r"], {}, 5),
      ]
      const { refused: rejected, stale } = yield* upsertAll(c, batch, majority, options)
      assert.deepStrictEqual(stale, [])
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
        upsertAll(nowhere.db("x").collection<StoredDocument>("y"), docs(["a"]), majority, options),
      )
      yield* Effect.promise(() => nowhere.close())
      assert.instanceOf(error, MongoWriteError)
      assert.isTrue(error.retryable)
    }),
  )

  it.effect(
    "leaves a newer document alone: an older write arriving late changes nothing and is reported",
    () =>
      Effect.gen(function* () {
        const c = collection()
        // The newer versions, from offsets 100-102 of partition 0.
        yield* upsertAll(c, docs(["k1", "k2", "k3"], { v: "new" }, 100), majority, options)
        // A late writer's batch from offsets 10-13: k1-k3 are older than what is stored, k4 is new.
        const late = docs(["k1", "k2", "k3", "k4"], { v: "old" }, 10)
        const result = yield* upsertAll(c, late, majority, options)
        assert.deepStrictEqual(result.refused, [])
        assert.deepStrictEqual(
          result.stale.map((s) => [late[s.index]!.id, s.stored.offset]),
          [
            ["k1", 100],
            ["k2", 101],
            ["k3", 102],
          ],
        )
        const after = yield* stored(c)
        assert.deepStrictEqual(
          after.map((d) => [d._id, d.v, d._kafka?.offset]),
          [
            ["k1", "new", 100],
            ["k2", "new", 101],
            ["k3", "new", 102],
            ["k4", "old", 13],
          ],
        )
        assert.deepStrictEqual(after[0]!._kafka, { topic: "orders", partition: 0, offset: 100 })
      }),
  )

  it.effect(
    "replaces from the same offset (a replay) or from another partition, where positions are not ordered",
    () =>
      Effect.gen(function* () {
        const c = collection()
        yield* upsertAll(c, docs(["a", "b"], { v: 1 }, 50), majority, options)
        // A replay of offset 50 with a changed pipeline rewrites the document.
        const replay = yield* upsertAll(c, docs(["a"], { v: 2 }, 50), majority, options)
        // Offset 7 of partition 3 is not ordered against partition 0: the key moved partitions.
        const moved = yield* upsertAll(c, docs(["b"], { v: 3 }, 7, 3), majority, options)
        assert.deepStrictEqual([replay.stale, moved.stale], [[], []])
        const after = yield* stored(c)
        assert.deepStrictEqual(
          after.map((d) => [d._id, d.v, d._kafka?.partition, d._kafka?.offset]),
          [
            ["a", 2, 0, 50],
            ["b", 3, 3, 7],
          ],
        )
      }),
  )

  it.effect(
    "keeps the newest of one key written twice in a batch, and of a document stored without a position",
    () =>
      Effect.gen(function* () {
        const c = collection()
        yield* Effect.promise(() => c.insertOne({ _id: "legacy", v: "before positions" }))
        const batch = [
          ...docs(["twice", "legacy"], { v: "first" }, 20),
          ...docs(["twice"], { v: "second" }, 30),
        ]
        const result = yield* upsertAll(c, batch, majority, options)
        assert.deepStrictEqual(result, { refused: [], stale: [], skipped: [] })
        const after = yield* stored(c)
        assert.deepStrictEqual(
          after.map((d) => [d._id, d.v, d._kafka?.offset]),
          [
            ["legacy", "first", 21],
            ["twice", "second", 30],
          ],
        )
      }),
  )
})

describe("MongoSink.upsertAll with the position in the filter", () => {
  it.effect("a newer write that lands between the read and the replace still wins", () =>
    Effect.gen(function* () {
      const c = collection()
      yield* upsertAll(c, docs(["race"], { v: "old" }, 1), majority, byFilter)
      // The first read of stored positions sees offset 1; by the time the replace runs, a newer
      // writer has stored offset 90 (done here inside the read, before its answer returns).
      let reads = 0
      const racing = new Proxy(c, {
        get: (target, property, receiver) =>
          property === "find"
            ? (...args: Parameters<typeof target.find>) => {
                const cursor = target.find(...args)
                if (reads++ > 0) return cursor
                return {
                  toArray: async () => {
                    const before = await cursor.toArray()
                    await target.replaceOne(
                      { _id: "race" },
                      { v: "newer", _kafka: { topic: "orders", partition: 0, offset: 90 } },
                    )
                    return before
                  },
                }
              }
            : Reflect.get(target, property, receiver),
      })
      const result = yield* upsertAll(racing, docs(["race"], { v: "late" }, 5), majority, byFilter)
      assert.deepStrictEqual(
        result.stale.map((s) => s.stored.offset),
        [90],
      )
      assert.deepStrictEqual(result.refused, [])
      const after = yield* stored(c)
      assert.deepStrictEqual(
        after.map((d) => [d._id, d.v, d._kafka?.offset]),
        [["race", "newer", 90]],
      )
    }),
  )
})
