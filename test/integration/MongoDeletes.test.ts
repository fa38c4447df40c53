/**
 * Deletes for tombstones against the real server: a key's document is deleted when the
 * tombstone is not older than it, left alone (stale) when it was written from a later offset of
 * the tombstone's partition, deleted whatever its offset when written from another partition; a
 * key with no document is nothing to delete; more deletes than one command carries are all made.
 * A delete leaves a marker, so that a write older than the delete arriving after it is stale
 * instead of creating the document again (with a key never stored too), while a newer write
 * creates it; a tombstone read again after a newer delete leaves the newer marker.
 * Both ways the service uses: the read alone (as on FerretDB) and with the position condition in
 * the filter (as on MongoDB).
 */
import { afterAll, assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { MongoClient } from "mongodb"
import { deleteAll } from "../../src/Mongo/MongoDeletes.js"
import { type StoredDocument, type UpsertOptions, upsertAll } from "../../src/Mongo/MongoSink.js"
import { mongoUri, unique } from "./support/Stack.js"

const client = new MongoClient(mongoUri)
const database = unique("deletetest").replace(/-/g, "_")
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

const ids = (c: ReturnType<typeof collection>) =>
  Effect.promise(async () => (await c.find({}).sort({ _id: 1 }).toArray()).map((d) => d._id))

describe.each([
  ["read alone", { replaceBatchSize: 4, conditionalReplace: false } satisfies UpsertOptions],
  ["position in the filter", { replaceBatchSize: 4, conditionalReplace: true } satisfies UpsertOptions],
])("MongoDeletes.deleteAll, %s", (_, options) => {
  it.effect("deletes what is not newer than the tombstone, and leaves the newer alone", () =>
    Effect.gen(function* () {
      const c = collection()
      // a@10, b@20, c@30 on partition 0; d@40 on partition 1.
      yield* upsertAll(
        c,
        [
          { id: "a", document: { v: 1 }, position: at(10) },
          { id: "b", document: { v: 1 }, position: at(20) },
          { id: "c", document: { v: 1 }, position: at(30) },
          { id: "d", document: { v: 1 }, position: at(40, 1) },
        ],
        majority,
        options,
      )
      const result = yield* deleteAll(
        c,
        [
          { id: "a", position: at(11) }, // newer: deleted
          { id: "b", position: at(20) }, // the same position (a batch read again): deleted
          { id: "c", position: at(25) }, // older than c@30: stale
          { id: "d", position: at(5) }, // another partition: not ordered, deleted
          { id: "e", position: at(50) }, // no document
        ],
        majority,
        options,
      )
      assert.strictEqual(result.deleted, 3)
      assert.deepStrictEqual(result.stale, [
        { index: 2, stored: { topic: "orders", partition: 0, offset: 30 } },
      ])
      assert.deepStrictEqual(yield* ids(c), ["c"])
    }),
  )

  it.effect("makes every delete when there are more than one command carries", () =>
    Effect.gen(function* () {
      const c = collection()
      const keys = Array.from({ length: 11 }, (_, i) => `k${String(i).padStart(2, "0")}`)
      yield* upsertAll(
        c,
        keys.map((id, i) => ({ id, document: { v: i }, position: at(i) })),
        majority,
        options,
      )
      const result = yield* deleteAll(
        c,
        keys.slice(1).map((id) => ({ id, position: at(100) })),
        majority,
        options,
      )
      assert.deepStrictEqual(result, { deleted: 10, stale: [] })
      assert.deepStrictEqual(yield* ids(c), ["k00"])
    }),
  )

  it.effect("a delete's marker: an older write arriving after it is stale, a newer one writes", () =>
    Effect.gen(function* () {
      const c = collection()
      const markers = {
        collection: client.db(database).collection<StoredDocument>(unique("deletes")),
        prunedAt: 0,
      }
      const withMarkers: UpsertOptions = { ...options, markers }
      yield* upsertAll(c, [{ id: "a", document: { v: 1 }, position: at(10) }], majority, withMarkers)
      // a deleted at 20; b, never stored, deleted at 30.
      yield* deleteAll(
        c,
        [
          { id: "a", position: at(20) },
          { id: "b", position: at(30) },
        ],
        majority,
        withMarkers,
      )
      const late = yield* upsertAll(
        c,
        [
          { id: "a", document: { v: 1 }, position: at(10) }, // the write from before the delete, landing late
          { id: "b", document: { v: 1 }, position: at(25) }, // older than b's delete
          { id: "c", document: { v: 1 }, position: at(26) }, // no delete
        ],
        majority,
        withMarkers,
      )
      assert.deepStrictEqual(
        late.stale.map((s) => [s.index, s.stored.offset]),
        [
          [0, 20],
          [1, 30],
        ],
      )
      assert.deepStrictEqual(yield* ids(c), ["c"])
      // The tombstone of a read again: the newer marker stays; a write after it creates the document.
      yield* deleteAll(c, [{ id: "a", position: at(15) }], majority, withMarkers)
      const marker = yield* Effect.promise(() => markers.collection.findOne({ _id: "a" }))
      assert.strictEqual(marker?._kafka?.offset, 20)
      const after = yield* upsertAll(
        c,
        [{ id: "a", document: { v: 2 }, position: at(21) }],
        majority,
        withMarkers,
      )
      assert.deepStrictEqual(after.stale, [])
      assert.deepStrictEqual(yield* ids(c), ["a", "c"])
      // Without markers (deletes not configured) the late write creates the document: what they prevent.
      const unmarked = yield* upsertAll(
        c,
        [{ id: "b", document: { v: 1 }, position: at(25) }],
        majority,
        options,
      )
      assert.deepStrictEqual(unmarked.stale, [])
      assert.deepStrictEqual(yield* ids(c), ["a", "b", "c"])
    }),
  )
})
