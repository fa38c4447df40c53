/**
 * The duplicate check's saved window against the real server: saves that come together are
 * written together and each is acknowledged; a batch saved again replaces its entry; reading back
 * gives a partition's batches in offset order and deletes (by `_id`) what is past the TTL or too
 * far behind; other partitions and groups are not touched.
 */
import { afterAll, assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { MongoClient } from "mongodb"
import { type StoredKeys, type WindowScope, windowStore } from "../../src/Mongo/SavedKeys.js"
import { mongoUri, unique } from "./support/Stack.js"

const client = new MongoClient(mongoUri)
const database = unique("savedkeys").replace(/-/g, "_")
afterAll(async () => {
  await client
    .db(database)
    .dropDatabase()
    .catch(() => undefined)
  await client.close()
})

const scope = (partition: number, group = "g"): WindowScope => ({
  group,
  task: "dedupe",
  topic: "orders",
  partition,
})
const keep = { since: 0, offset: Number.MIN_SAFE_INTEGER }
const batch = (first: number, keys: ReadonlyArray<string>, at = Date.now()) => ({
  first: String(first),
  last: String(first + keys.length - 1),
  at,
  keys,
  offsets: keys.map((_, i) => String(first + i)),
})

describe("the saved duplicate window", () => {
  it.effect(
    "saves many batches at once, each acknowledged, and reads a partition's back in offset order",
    () =>
      Effect.gen(function* () {
        const collection = client.db(database).collection<StoredKeys>(unique("windows"))
        const store = windowStore(collection)
        // Forty batches of two partitions saved at the same time (most wait for the first write).
        yield* Effect.forEach(
          Array.from({ length: 40 }, (_, i) => i),
          (i) => store.save(scope(i % 2), batch(i * 10, [`k${i}a`, `k${i}b`]), keep),
          { concurrency: "unbounded", discard: true },
        )
        assert.strictEqual(yield* Effect.promise(() => collection.countDocuments()), 40)
        // A batch saved again (read again after a crash) replaces its entry.
        yield* store.save(scope(0), batch(0, ["again"]), keep)
        const back = yield* store.load(scope(0), keep)
        assert.strictEqual(back.length, 20)
        assert.deepStrictEqual(
          back.map((b) => Number(b.first)),
          Array.from({ length: 20 }, (_, i) => i * 20),
        )
        assert.deepStrictEqual(back[0]!.keys, ["again"])
        assert.deepStrictEqual(back[1]!.keys, ["k2a", "k2b"])
        assert.deepStrictEqual(back[1]!.offsets, ["20", "21"])
        assert.notProperty(back[1]!, "deleted")
        // A batch's deletes come back with it.
        yield* store.save(
          scope(0),
          { ...batch(1000, ["x", "y"]), deleted: ["x", "z"], deletedOffsets: ["1002", "1003"] },
          keep,
        )
        const withDeletes = (yield* store.load(scope(0), keep)).at(-1)!
        assert.deepStrictEqual(
          [withDeletes.keys, withDeletes.deleted, withDeletes.deletedOffsets],
          [
            ["x", "y"],
            ["x", "z"],
            ["1002", "1003"],
          ],
        )
      }),
  )

  it.effect("reading back deletes what is past the TTL or too far behind, and only that partition's", () =>
    Effect.gen(function* () {
      const collection = client.db(database).collection<StoredKeys>(unique("windows"))
      const store = windowStore(collection)
      const now = Date.now()
      yield* store.save(scope(0), batch(0, ["old"], now - 7_200_000), keep)
      yield* store.save(scope(0), batch(10, ["behind"], now), keep)
      yield* store.save(scope(0), batch(5_000, ["recent"], now), keep)
      yield* store.save(scope(1), batch(0, ["other partition"], now - 7_200_000), keep)
      yield* store.save(scope(0, "other group"), batch(0, ["other group"], now - 7_200_000), keep)
      // A one-hour TTL, and offsets more than 1,000 behind 5,000 forgotten.
      const back = yield* store.load(scope(0), { since: now - 3_600_000, offset: 4_000 })
      assert.deepStrictEqual(
        back.map((b) => b.keys[0]),
        ["recent"],
      )
      const left = yield* Effect.promise(() => collection.find({}).toArray())
      assert.deepStrictEqual(left.map((d) => d.keys[0]).sort(), ["other group", "other partition", "recent"])
    }),
  )
})
