/**
 * The write models against the real server (MongoSink.upsertAll): `merge` sets the record's
 * fields on the stored document and keeps the others, and an older merge arriving late changes
 * nothing; `insert` leaves a stored document as it is and reports it skipped, writes new keys,
 * and rejects a clash on another unique index rather than skipping it. More existing keys than
 * one command carries are all merged. Both ways the service uses: the read alone (as on
 * FerretDB) and with the position condition in the filter (as on MongoDB).
 */
import { afterAll, assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { MongoClient } from "mongodb"
import { type StoredDocument, type UpsertOptions, upsertAll } from "../../src/Mongo/MongoSink.js"
import { mongoUri, unique } from "./support/Stack.js"

const client = new MongoClient(mongoUri)
const database = unique("writemodels").replace(/-/g, "_")
const collection = () => client.db(database).collection<StoredDocument>(unique("docs"))
const majority = { w: "majority" as const, journal: true }

afterAll(async () => {
  await client
    .db(database)
    .dropDatabase()
    .catch(() => undefined)
  await client.close()
})

const at = (offset: number) => ({ topic: "orders", partition: 0, offset: String(offset) })

const fields = (c: ReturnType<typeof collection>) =>
  Effect.promise(async () =>
    Object.fromEntries(
      (await c.find({}).sort({ _id: 1 }).toArray()).map(({ _id, _kafka, ...rest }) => [_id, rest]),
    ),
  )

describe.each([
  ["read alone", false],
  ["position in the filter", true],
])("write models, %s", (_, conditionalReplace) => {
  const merge: UpsertOptions = { replaceBatchSize: 4, conditionalReplace, writeModel: "merge" }
  const insert: UpsertOptions = { replaceBatchSize: 4, conditionalReplace, writeModel: "insert" }

  it.effect("merge: sets the record's fields and keeps the others; a late older merge changes nothing", () =>
    Effect.gen(function* () {
      const c = collection()
      yield* upsertAll(
        c,
        [
          { id: "a", document: { n: 1, note: "kept", nested: { x: 1, y: 2 } }, position: at(10) },
          { id: "b", document: { n: 1 }, position: at(11) },
        ],
        majority,
        merge,
      )
      const result = yield* upsertAll(
        c,
        [
          { id: "a", document: { n: 2, nested: { x: 3 } }, position: at(20) },
          { id: "c", document: { n: 1 }, position: at(21) },
          { id: "b", document: { n: 0, note: "late" }, position: at(5) },
        ],
        majority,
        merge,
      )
      assert.deepStrictEqual(result.refused, [])
      assert.deepStrictEqual(
        result.stale.map((s) => s.index),
        [2],
      )
      // Top-level fields are set: a nested object is set whole, as the record has it.
      assert.deepStrictEqual(yield* fields(c), {
        a: { n: 2, note: "kept", nested: { x: 3 } },
        b: { n: 1 },
        c: { n: 1 },
      })
    }),
  )

  it.effect(
    "versions (newerBy): an older version is stale from any partition; several versions of a key in one call land newest last",
    () =>
      Effect.gen(function* () {
        const c = collection()
        const on = (partition: number, offset: number) => ({
          topic: "orders",
          partition,
          offset: String(offset),
        })
        const replace: UpsertOptions = { replaceBatchSize: 4, conditionalReplace, writeModel: "replace" }
        yield* upsertAll(
          c,
          [
            { id: "a", document: { v: 200 }, position: on(0, 10), version: 200 },
            { id: "b", document: { v: 100 }, position: on(0, 11), version: 100 },
            { id: "c", document: { v: 100 }, position: on(0, 12), version: 100 },
          ],
          majority,
          replace,
        )
        const result = yield* upsertAll(
          c,
          [
            // Older, from another partition: stale.
            { id: "a", document: { v: 150 }, position: on(1, 50), version: 150 },
            // Newer from another partition, then an older one after it in the same call: the newer stays.
            { id: "b", document: { v: 300 }, position: on(1, 51), version: 300 },
            { id: "b", document: { v: 250 }, position: on(2, 52), version: 250 },
            // The same version: the position decides (a later offset of the same partition replaces).
            { id: "c", document: { v: 100, again: true }, position: on(0, 13), version: 100 },
          ],
          majority,
          replace,
        )
        assert.deepStrictEqual(result.refused, [])
        assert.deepStrictEqual(
          result.stale.map((s) => s.index),
          [0],
        )
        assert.deepStrictEqual(yield* fields(c), { a: { v: 200 }, b: { v: 300 }, c: { v: 100, again: true } })
        const stored = yield* Effect.promise(() => c.findOne({ _id: "b" }))
        assert.deepStrictEqual(stored?._kafka, { topic: "orders", partition: 1, offset: 51, version: 300 })
        // Merged in version order: each version newer than the stored one sets its fields in turn,
        // whatever order they came in; then an older version changes nothing.
        yield* upsertAll(
          c,
          [{ id: "m", document: { s: 0 }, position: on(0, 59), version: 0 }],
          majority,
          merge,
        )
        yield* upsertAll(
          c,
          [
            { id: "m", document: { s: 3, third: true }, position: on(2, 60), version: 3 },
            { id: "m", document: { s: 1, first: true }, position: on(0, 61), version: 1 },
            { id: "m", document: { s: 2, second: true }, position: on(1, 62), version: 2 },
          ],
          majority,
          merge,
        )
        const late = yield* upsertAll(
          c,
          [{ id: "m", document: { s: -1 }, position: on(0, 64), version: 0 }],
          majority,
          merge,
        )
        assert.strictEqual(late.stale.length, 1)
        const m = yield* Effect.promise(() => c.findOne({ _id: "m" }))
        assert.deepStrictEqual(
          { s: m?.s, first: m?.first, second: m?.second, third: m?.third },
          { s: 3, first: true, second: true, third: true },
        )
      }),
  )

  it.effect("merge: more existing keys than one command carries are all merged", () =>
    Effect.gen(function* () {
      const c = collection()
      const ids = Array.from({ length: 10 }, (_, i) => `k${i}`)
      yield* upsertAll(
        c,
        ids.map((id, i) => ({ id, document: { old: true, n: 0 }, position: at(i) })),
        majority,
        merge,
      )
      yield* upsertAll(
        c,
        ids.map((id, i) => ({ id, document: { n: 1 }, position: at(100 + i) })),
        majority,
        merge,
      )
      const stored = yield* fields(c)
      for (const id of ids) assert.deepStrictEqual(stored[id], { old: true, n: 1 }, id)
    }),
  )

  it.effect("insert: a stored key is skipped, a new key written, another index's clash rejected", () =>
    Effect.gen(function* () {
      const c = collection()
      yield* Effect.promise(() => c.createIndex({ email: 1 }, { unique: true }))
      yield* upsertAll(c, [{ id: "a", document: { email: "a@x", n: 1 }, position: at(1) }], majority, insert)
      const result = yield* upsertAll(
        c,
        [
          { id: "a", document: { email: "a2@x", n: 2 }, position: at(2) },
          { id: "b", document: { email: "b@x", n: 1 }, position: at(3) },
          { id: "clash", document: { email: "a@x", n: 1 }, position: at(4) },
        ],
        majority,
        insert,
      )
      assert.deepStrictEqual(result.skipped, [0])
      assert.deepStrictEqual(
        result.refused.map((r) => [r.index, r.code]),
        [[2, 11000]],
      )
      assert.deepStrictEqual(yield* fields(c), {
        a: { email: "a@x", n: 1 },
        b: { email: "b@x", n: 1 },
      })
    }),
  )

  it.effect(
    "insert: a key stored from the record's own position is its earlier write, from a later one it is stale",
    () =>
      Effect.gen(function* () {
        const c = collection()
        yield* upsertAll(c, [{ id: "a", document: { n: 1 }, position: at(5) }], majority, insert)
        const again = yield* upsertAll(
          c,
          [{ id: "a", document: { n: 1 }, position: at(5) }],
          majority,
          insert,
        )
        assert.deepStrictEqual([again.skipped, again.stale, again.refused], [[], [], []])
        const older = yield* upsertAll(
          c,
          [{ id: "a", document: { n: 0 }, position: at(4) }],
          majority,
          insert,
        )
        assert.deepStrictEqual([older.skipped, older.stale.map((s) => s.index), older.refused], [[], [0], []])
        assert.deepStrictEqual(yield* fields(c), { a: { n: 1 } })
      }),
  )
})
