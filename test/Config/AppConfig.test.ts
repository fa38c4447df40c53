import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Redacted } from "effect"
import { decodeSettings, describeSettings } from "../../src/Config/AppConfig.js"

const SECRET = "s3cr3t-P4ssw0rd-xyzzy"

const base = {
  KAFKA__BOOTSTRAP_SERVERS: "b1:9092, b2:9093",
  KAFKA__TOPIC_SOURCE: "orders",
  KAFKA__TOPIC_SINK: "orders.clean",
  KAFKA__CONSUMER_GROUP: "pipeline",
  MONGODB__CONNECTION_STRING: `mongodb://app:${SECRET}@db:27017/`,
  MONGODB__DATABASE: "shop",
  MONGODB__COLLECTION: "orders",
}

const problemsOf = (env: Record<string, string>) =>
  decodeSettings(env).pipe(
    Effect.flip,
    Effect.map((e) => e.problems),
  )

describe("AppConfig", () => {
  it.effect("decodes the documented defaults", () =>
    Effect.gen(function* () {
      const s = yield* decodeSettings(base)
      assert.deepStrictEqual(s.kafka.brokers, ["b1:9092", "b2:9093"])
      assert.strictEqual(s.kafka.topicDlq, "orders.dlq")
      assert.strictEqual(s.kafka.autoOffsetReset, "earliest")
      assert.isUndefined(s.kafka.sasl)
      assert.strictEqual(s.pipeline.batchSize, 500)
      assert.strictEqual(s.pipeline.batchesInFlight, 3)
      assert.strictEqual(s.pipeline.maxInFlightBytes, 16 * 1_048_576)
      assert.strictEqual(Duration.toMillis(s.kafka.commitInterval), 1000)
      assert.strictEqual(s.pipeline.maxWorkers, 10)
      assert.strictEqual(s.pipeline.retryCount, 3)
      assert.strictEqual(Duration.toMillis(s.pipeline.retryDelay), 5000)
      assert.strictEqual(s.logging.level, "INFO")
      assert.strictEqual(s.logging.format, "json")
      assert.strictEqual(Redacted.value(s.mongodb.uri), base.MONGODB__CONNECTION_STRING)
      assert.strictEqual(s.mongodb.onTombstone, "dead_letter")
      assert.strictEqual(s.mongodb.writeModel, "replace")
      assert.strictEqual(s.mongodb.onExisting, "skip")
      assert.strictEqual(s.pipeline.sourceFormat, "plain")
    }),
  )

  it.effect(
    "reads MONGODB__ON_TOMBSTONE, MONGODB__WRITE_MODEL, PIPELINE__SOURCE_FORMAT and names a value they do not know",
    () =>
      Effect.gen(function* () {
        for (const choice of ["delete", "ignore", "dead_letter"] as const)
          assert.strictEqual(
            (yield* decodeSettings({ ...base, MONGODB__ON_TOMBSTONE: choice })).mongodb.onTombstone,
            choice,
          )
        assert.deepStrictEqual(yield* problemsOf({ ...base, MONGODB__ON_TOMBSTONE: "drop" }), [
          'MONGODB__ON_TOMBSTONE: expected one of delete, ignore, dead_letter, got "drop"',
        ])
        for (const model of ["replace", "merge", "insert"] as const)
          assert.strictEqual(
            (yield* decodeSettings({ ...base, MONGODB__WRITE_MODEL: model })).mongodb.writeModel,
            model,
          )
        assert.deepStrictEqual(yield* problemsOf({ ...base, MONGODB__WRITE_MODEL: "update" }), [
          'MONGODB__WRITE_MODEL: expected one of replace, merge, insert, got "update"',
        ])
        assert.strictEqual(
          (yield* decodeSettings({ ...base, PIPELINE__SOURCE_FORMAT: "debezium" })).pipeline.sourceFormat,
          "debezium",
        )
        assert.deepStrictEqual(yield* problemsOf({ ...base, PIPELINE__SOURCE_FORMAT: "avro" }), [
          'PIPELINE__SOURCE_FORMAT: expected one of plain, debezium, got "avro"',
        ])
      }),
  )

  it.effect(
    "reads MONGODB__ON_EXISTING, and refuses dead_letter beside a write model that writes over a stored key",
    () =>
      Effect.gen(function* () {
        const insert = { ...base, MONGODB__WRITE_MODEL: "insert" }
        for (const choice of ["skip", "dead_letter"] as const)
          assert.strictEqual(
            (yield* decodeSettings({ ...insert, MONGODB__ON_EXISTING: choice })).mongodb.onExisting,
            choice,
          )
        assert.deepStrictEqual(yield* problemsOf({ ...insert, MONGODB__ON_EXISTING: "fail" }), [
          'MONGODB__ON_EXISTING: expected one of skip, dead_letter, got "fail"',
        ])
        assert.strictEqual(
          (yield* decodeSettings({ ...base, MONGODB__ON_EXISTING: "skip" })).mongodb.onExisting,
          "skip",
        )
        assert.deepStrictEqual(yield* problemsOf({ ...base, MONGODB__ON_EXISTING: "dead_letter" }), [
          "MONGODB__ON_EXISTING: dead_letter applies to MONGODB__WRITE_MODEL=insert only (it is replace, which writes over a stored key)",
        ])
      }),
  )

  it.effect("reads SASL credentials when both are set, and keeps the secret redacted", () =>
    Effect.gen(function* () {
      const s = yield* decodeSettings({ ...base, KAFKA__API_KEY: "key", KAFKA__API_SECRET: SECRET })
      assert.strictEqual(s.kafka.sasl?.username, "key")
      assert.strictEqual(Redacted.value(s.kafka.sasl!.password), SECRET)
      const dump = describeSettings(s)
      assert.notInclude(dump, SECRET)
      assert.include(dump, "<redacted:KAFKA__API_SECRET>")
      assert.include(dump, "<redacted:MONGODB__CONNECTION_STRING>")
      assert.include(dump, '"retryDelay": "5s"')
      assert.notInclude(String(s.kafka.sasl!.password), SECRET)
    }),
  )

  it.effect("names every problem at once", () =>
    Effect.gen(function* () {
      const problems = yield* problemsOf({
        KAFKA__BOOTSTRAP_SERVERS: "nohost",
        KAFKA__TOPIC_SOURCE: "orders",
        KAFKA__API_KEY: "only-the-key",
        MONGODB__CONNECTION_STRING: `http://${SECRET}`,
        PIPELINE__BATCH_SIZE: "abc",
        PIPELINE__RETRY_DELAY_SECONDS: "-1",
        KAFKA__AUTO_OFFSET_RESET: "middle",
        LOGGING__LEVEL: "LOUD",
      })
      assert.deepStrictEqual(problems, [
        'KAFKA__BOOTSTRAP_SERVERS: "nohost" is not host:port',
        "KAFKA__API_KEY and KAFKA__API_SECRET: set both (SASL/PLAIN) or neither",
        "MONGODB__CONNECTION_STRING: expected a mongodb:// or mongodb+srv:// URI",
        "KAFKA__TOPIC_SINK: required but not set",
        "KAFKA__CONSUMER_GROUP: required but not set",
        'KAFKA__AUTO_OFFSET_RESET: expected one of earliest, latest, got "middle"',
        "MONGODB__DATABASE: required but not set",
        "MONGODB__COLLECTION: required but not set",
        'PIPELINE__BATCH_SIZE: expected a whole number from 1 to 100000, got "abc"',
        'PIPELINE__RETRY_DELAY_SECONDS: expected a number of seconds from 0 to 3600, got "-1"',
        'LOGGING__LEVEL: expected one of DEBUG, INFO, WARNING, ERROR, got "LOUD"',
      ])
      assert.notInclude(problems.join("\n"), SECRET)
    }),
  )

  it.effect(
    "names every variable under the settings' prefixes that no setting reads, with the nearest name",
    () =>
      Effect.gen(function* () {
        const problems = yield* problemsOf({
          ...base,
          MONGODB__COLECTION: "orders",
          kafka__topic_sink: "x",
          MONGODB__WRITE_CONCERN: "bogus",
          PIPELINE__COMPRESSION: "zstd",
          METRICS__PROT: "9464",
          LOGGING__LEVL: "",
        })
        assert.deepStrictEqual(problems, [
          "LOGGING__LEVL: no such setting; did you mean LOGGING__LEVEL?",
          "METRICS__PROT: no such setting; did you mean METRICS__PORT?",
          "MONGODB__COLECTION: no such setting; did you mean MONGODB__COLLECTION?",
          "MONGODB__WRITE_CONCERN: no such setting (the MONGODB__ settings: MONGODB__COLLECTION, MONGODB__CONNECTION_STRING, MONGODB__DATABASE, MONGODB__ON_EXISTING, MONGODB__ON_TOMBSTONE, MONGODB__REPLACE_BATCH_SIZE, MONGODB__TIMEOUT_SECONDS, MONGODB__WRITE_MODEL; .env.example lists them all)",
          "PIPELINE__COMPRESSION: no such setting (the PIPELINE__ settings: PIPELINE__BATCHES_IN_FLIGHT, PIPELINE__BATCH_SIZE, PIPELINE__FILE, PIPELINE__HEAP_LIMITS, PIPELINE__MAX_IN_FLIGHT_BYTES, PIPELINE__MAX_KEY_BYTES, PIPELINE__MAX_NESTING_DEPTH, PIPELINE__MAX_RETRY_DELAY_SECONDS, PIPELINE__MAX_WORKERS, PIPELINE__PARTITIONS_CONCURRENCY, PIPELINE__RETRY_COUNT, PIPELINE__RETRY_DELAY_SECONDS, PIPELINE__SHUTDOWN_TIMEOUT_SECONDS, PIPELINE__SOURCE_FORMAT, PIPELINE__STALL_TIMEOUT_SECONDS; .env.example lists them all)",
          "kafka__topic_sink: no such setting; did you mean KAFKA__TOPIC_SINK?",
        ])
      }),
  )

  it.effect("knows the variables read elsewhere and leaves other prefixes alone", () =>
    Effect.gen(function* () {
      yield* decodeSettings({
        ...base,
        PIPELINE__HEAP_LIMITS: "off",
        PIPELINE__FILE: "config/pipeline.yaml",
        ENV_FILE: "/nonexistent/.env",
        TEST_DATA__RATE: "10",
        KAFKA__API_KEY: "key",
        KAFKA__API_SECRET: "secret",
        STACK_KAFKA_PORT: "9092",
        KAFKA_HOME: "/opt/kafka",
      })
    }),
  )

  it.effect("treats blank values as unset", () =>
    Effect.gen(function* () {
      const problems = yield* problemsOf({ ...base, KAFKA__TOPIC_SINK: "   " })
      assert.deepStrictEqual(problems, ["KAFKA__TOPIC_SINK: required but not set"])
    }),
  )
})
