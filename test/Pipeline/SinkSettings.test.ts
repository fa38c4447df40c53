/**
 * A MongoDB sink's own settings, as logic: the version a `newerBy` field gives, the order several
 * versions of a document are written in, which records a later tombstone of their key deletes,
 * and the start-up checks of the sink's settings against the environment's.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import type { KafkaMessage } from "kafkajs"
import { decodeSettings } from "../../src/Config/AppConfig.js"
import { decodePipelineSpec } from "../../src/Config/PipelineSpec.js"
import { sinkSettingsProblems } from "../../src/Config/SinkChecks.js"
import { makeRecord } from "../../src/Domain/Record.js"
import { inRounds, isNewer, type StoredPosition } from "../../src/Mongo/MongoSink.js"
import { splitByDeletes, versionOf } from "../../src/Pipeline/Sinks.js"

const env = {
  KAFKA__BOOTSTRAP_SERVERS: "127.0.0.1:9092",
  KAFKA__TOPIC_SOURCE: "orders",
  KAFKA__TOPIC_SINK: "orders.clean",
  KAFKA__CONSUMER_GROUP: "pipeline",
  MONGODB__CONNECTION_STRING: "mongodb://127.0.0.1:27017",
  MONGODB__DATABASE: "shop",
  MONGODB__COLLECTION: "orders",
}

const pipeline = (sinkSettings: Record<string, unknown>) =>
  decodePipelineSpec({
    key: "id",
    tasks: [
      { name: "mongodb", type: "mongodb_sink", settings: sinkSettings },
      { name: "kafka", type: "kafka_sink" },
    ],
  })

describe("versionOf (newerBy)", () => {
  it("a timestamp in epoch ms, a number as it is; anything else says what it is", () => {
    assert.strictEqual(versionOf("2026-11-01T00:00:00Z"), Date.parse("2026-11-01T00:00:00Z"))
    assert.strictEqual(versionOf("2026-11-01T02:00:00+02:00"), Date.parse("2026-11-01T00:00:00Z"))
    assert.strictEqual(versionOf(42), 42)
    assert.strictEqual(versionOf(undefined), "is missing or null")
    assert.strictEqual(versionOf(null), "is missing or null")
    assert.strictEqual(versionOf("yesterday"), 'is "yesterday", not a timestamp')
    assert.strictEqual(versionOf(true), "is a boolean")
    assert.strictEqual(versionOf([1]), "is an array")
  })
})

describe("isNewer with versions", () => {
  const at = (partition: number, offset: number, version?: number): StoredPosition =>
    version === undefined ? { topic: "t", partition, offset } : { topic: "t", partition, offset, version }
  it("versions decide across partitions; equal or missing versions leave it to the position", () => {
    assert.isTrue(isNewer(at(0, 1, 200), at(1, 9, 100)))
    assert.isFalse(isNewer(at(0, 9, 100), at(0, 1, 200)))
    assert.isTrue(isNewer(at(0, 9, 100), at(0, 1, 100)))
    assert.isFalse(isNewer(at(0, 9, 100), at(1, 1, 100)))
    assert.isTrue(isNewer(at(0, 9, 100), at(0, 1)))
    assert.isTrue(isNewer(at(0, 9), at(0, 1, 100)))
  })
})

describe("inRounds", () => {
  const positions: ReadonlyArray<StoredPosition> = [
    { topic: "t", partition: 0, offset: 1, version: 3 },
    { topic: "t", partition: 1, offset: 2, version: 1 },
    { topic: "t", partition: 2, offset: 3 },
    { topic: "t", partition: 0, offset: 4, version: 2 },
  ]
  const ids = ["a", "a", "b", "a"]
  it("one round when every document is written once", () => {
    assert.deepStrictEqual(
      inRounds([0, 2], (i) => ids[i]!, positions, "replace"),
      [[0, 2]],
    )
  })
  it("replace: the newest version of each document only", () => {
    assert.deepStrictEqual(
      inRounds([0, 1, 2, 3], (i) => ids[i]!, positions, "replace"),
      [[0, 2]],
    )
  })
  it("merge: every version, oldest first, one per document a round", () => {
    assert.deepStrictEqual(
      inRounds([0, 1, 2, 3], (i) => ids[i]!, positions, "merge"),
      [[1, 2], [3], [0]],
    )
  })
})

describe("splitByDeletes", () => {
  const keyed = (key: string, offset: number) => ({ key, record: makeRecord(String(offset), { id: key }) })
  const tombstone = (key: string, offset: number) => ({
    key,
    message: { offset: String(offset), key: Buffer.from(key), value: null } as unknown as KafkaMessage,
  })
  it("a record before a later tombstone of its key is deleted by it; the rest follow the deletes", () => {
    const records = [keyed("a", 1), keyed("b", 2), keyed("a", 4), keyed("c", 5), keyed("c", 7)]
    const { superseded, due } = splitByDeletes(records, [tombstone("a", 3), tombstone("c", 6)])
    assert.deepStrictEqual(
      superseded.map((k) => `${k.key}@${k.record.offset}`),
      ["a@1", "c@5"],
    )
    assert.deepStrictEqual(
      due.map((k) => `${k.key}@${k.record.offset}`),
      ["b@2", "a@4", "c@7"],
    )
  })
})

describe("the sink's settings against the environment's, at start", () => {
  const problemsOf = (sinkSettings: Record<string, unknown>, extra: Record<string, string> = {}) =>
    Effect.gen(function* () {
      const settings = yield* decodeSettings({ ...env, ...extra })
      return sinkSettingsProblems(settings, yield* pipeline(sinkSettings))
    })

  it.effect("fits: the sink's own model, a business key, a version field", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(
        yield* problemsOf({ writeModel: "merge", documentKey: ["customer", "order"], newerBy: "updated_at" }),
        [],
      )
      // The pipeline's own key as documentKey goes with deletes.
      assert.deepStrictEqual(
        yield* problemsOf({ documentKey: "id" }, { MONGODB__ON_TOMBSTONE: "delete" }),
        [],
      )
    }),
  )

  it.effect("newerBy with the insert model, from the file or from MONGODB__WRITE_MODEL", () =>
    Effect.gen(function* () {
      const [fromFile] = yield* problemsOf({ writeModel: "insert", newerBy: "updated_at" })
      assert.include(fromFile, "newerBy orders the versions a write replaces")
      assert.include(fromFile, "(its writeModel)")
      const [fromEnv] = yield* problemsOf({ newerBy: "updated_at" }, { MONGODB__WRITE_MODEL: "insert" })
      assert.include(fromEnv, "(MONGODB__WRITE_MODEL)")
    }),
  )

  it.effect("onExisting dead_letter with a model that writes over a stored key", () =>
    Effect.gen(function* () {
      const [problem] = yield* problemsOf({ onExisting: "dead_letter" })
      assert.include(problem, "onExisting dead_letter applies to the insert write model only")
      assert.deepStrictEqual(yield* problemsOf({ onExisting: "dead_letter", writeModel: "insert" }), [])
    }),
  )

  it.effect("a documentKey other than the pipeline's key where deletes come", () =>
    Effect.gen(function* () {
      const [tombstones] = yield* problemsOf({ documentKey: "email" }, { MONGODB__ON_TOMBSTONE: "delete" })
      assert.include(tombstones, "documentKey (email) differs from the pipeline's key (id)")
      const [debezium] = yield* problemsOf({ documentKey: "email" }, { PIPELINE__SOURCE_FORMAT: "debezium" })
      assert.include(debezium, "PIPELINE__SOURCE_FORMAT=debezium")
    }),
  )

  it.effect("the file's settings are checked when decoded: a documentKey field that is no path", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(pipeline({ documentKey: ["a..b"] }))
      assert.include(error.message, "documentKey")
    }),
  )
})
