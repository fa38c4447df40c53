import { createServer, type Server } from "node:net"
import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Layer } from "effect"
import { loadAll } from "../../src/Cli.js"
import { AppConfig, decodeSettings, describeSettings } from "../../src/Config/AppConfig.js"
import { KafkaConnectionError } from "../../src/Kafka/Errors.js"
import { KafkaClient } from "../../src/Kafka/KafkaClient.js"
import { MongoDb } from "../../src/Mongo/MongoDb.js"
import { scrub, secretsOfEnv, secretsOfSettings } from "../../src/Observability/Redaction.js"
import { captureLogs } from "./support.js"

// Recognisable fakes: if one of these shows up anywhere, a secret leaked.
const KAFKA_SECRET = "FAKE-kafka-api-secret-7f3a9c"
const MONGO_PASSWORD = "FAKE-mongo-pw-b41d2e"
const secretsIn = (text: string) => [KAFKA_SECRET, MONGO_PASSWORD].filter((s) => text.includes(s))

const env = (mongoUri: string) => ({
  KAFKA__BOOTSTRAP_SERVERS: "127.0.0.1:9092",
  KAFKA__TOPIC_SOURCE: "orders",
  KAFKA__TOPIC_SINK: "orders.clean",
  KAFKA__CONSUMER_GROUP: "pipeline",
  KAFKA__API_KEY: "fake-key",
  KAFKA__API_SECRET: KAFKA_SECRET,
  MONGODB__CONNECTION_STRING: mongoUri,
  MONGODB__DATABASE: "shop",
  MONGODB__COLLECTION: "orders",
})

/** A port on which nothing listens. */
const closedPort = Effect.promise(
  () =>
    new Promise<number>((resolve) => {
      const server = createServer()
      server.listen(0, "127.0.0.1", () => {
        const address = server.address()
        server.close(() => resolve(typeof address === "object" && address !== null ? address.port : 1))
      })
    }),
)

/** A TCP server that hangs up on every connection: a TLS handshake to it fails at once. */
const hangingUp = Effect.acquireRelease(
  Effect.promise(
    () =>
      new Promise<{ server: Server; port: number }>((resolve) => {
        const server = createServer((socket) => socket.destroy())
        server.listen(0, "127.0.0.1", () => {
          const address = server.address()
          resolve({ server, port: typeof address === "object" && address !== null ? address.port : 1 })
        })
      }),
  ),
  ({ server }) => Effect.promise(() => new Promise<void>((done) => server.close(() => done()))),
)

describe("secrets never reach a log line, an error message or a config dump", () => {
  it("scrub blanks secret values verbatim, JSON-escaped and percent-decoded, and any URI password", () => {
    const uri = "mongodb://app:p%40ss%22word@db:27017/"
    const secrets = secretsOfEnv({ MONGODB__CONNECTION_STRING: uri, KAFKA__API_SECRET: KAFKA_SECRET })
    assert.strictEqual(scrub(`uri=${uri}`, secrets), "uri=<redacted>")
    assert.strictEqual(scrub(`{"password":"p@ss\\"word"}`, secrets), `{"password":"<redacted>"}`)
    assert.strictEqual(scrub(`secret ${KAFKA_SECRET}!`, secrets), "secret <redacted>!")
    assert.strictEqual(
      scrub("failed to reach mongodb+srv://someone:hunter22@cluster0.example.net/db", []),
      "failed to reach mongodb+srv://someone:<redacted>@cluster0.example.net/db",
    )
    // Ports and paths are not passwords.
    assert.strictEqual(scrub("http://host:8080/a@b", []), "http://host:8080/a@b")
  })

  it("scrub blanks a secret of any length; one under 4 characters where it stands alone", () => {
    const secrets = secretsOfEnv({
      KAFKA__API_SECRET: "ab",
      MONGODB__CONNECTION_STRING: "mongodb://u:x.@db/",
    })
    assert.strictEqual(
      scrub('{"password":"ab"} password=ab ab', secrets),
      '{"password":"<redacted>"} password=<redacted> <redacted>',
    )
    // Inside a longer word it is the word, not the secret.
    assert.strictEqual(scrub("about a tab: crab", secrets), "about a tab: crab")
    // A URI's short password, and one made of characters a regular expression would read as syntax.
    assert.strictEqual(scrub("password x. and x.y", secrets), "password <redacted> and x.y")
    assert.strictEqual(scrub("mongodb://u:x.@db/", secrets), "<redacted>")
    const one = secretsOfEnv({ KAFKA__API_SECRET: "7" })
    assert.strictEqual(scrub("secret=7 port 9464 7s", one), "secret=<redacted> port 9464 7s")
  })

  it.effect("the configuration error message", () =>
    Effect.gen(function* () {
      const bad = {
        ...env(`http://app:${MONGO_PASSWORD}@db/`),
        KAFKA__API_KEY: "",
        PIPELINE__BATCH_SIZE: "lots",
      }
      const error = yield* Effect.flip(decodeSettings(bad))
      assert.include(error.message, "MONGODB__CONNECTION_STRING")
      assert.include(error.message, "KAFKA__API_KEY and KAFKA__API_SECRET")
      assert.deepStrictEqual(secretsIn(error.message), [])
    }),
  )

  it.effect("the startup error of `validate` and `run` (settings and pipeline together)", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        loadAll({
          ...env(`mongo://app:${MONGO_PASSWORD}@db/`),
          KAFKA__API_KEY: "",
          PIPELINE__FILE: "does/not/exist.yaml",
        }),
      )
      assert.include(error.message, "does/not/exist.yaml")
      assert.deepStrictEqual(secretsIn(error.message), [])
    }),
  )

  it.effect("describeSettings and the `starting` log line's settings dump", () =>
    Effect.gen(function* () {
      const settings = yield* decodeSettings(env(`mongodb://app:${MONGO_PASSWORD}@db:27017/`))
      const dump = describeSettings(settings)
      assert.deepStrictEqual(secretsIn(dump), [])
      assert.include(dump, "<redacted:KAFKA__API_SECRET>")
      assert.include(dump, "<redacted:MONGODB__CONNECTION_STRING>")
      // The raw logger, without scrubbing: the Redacted values alone keep the secrets out.
      const { lines } = yield* captureLogs(
        Effect.logInfo("starting").pipe(Effect.annotateLogs({ settings, dump: JSON.parse(dump) as unknown })),
      )
      assert.deepStrictEqual(secretsIn(lines.join("\n")), [])
    }),
  )

  it.live(
    "a startup failure when MongoDB cannot be reached: the error, its cause and the log line",
    () =>
      Effect.gen(function* () {
        const port = yield* closedPort
        for (const uri of [
          `mongodb://app:${MONGO_PASSWORD}@127.0.0.1:${port}/?serverSelectionTimeoutMS=300`,
          `mongodb://app:${MONGO_PASSWORD}@127.0.0.1:${port}/?notAnOption=1`,
          `mongodb://app:${MONGO_PASSWORD}%zz@127.0.0.1:${port}/`,
        ]) {
          const settings = yield* decodeSettings(env(uri))
          const exit = yield* Effect.exit(
            Effect.scoped(Layer.build(MongoDb.layer.pipe(Layer.provide(Layer.succeed(AppConfig, settings))))),
          )
          assert.isTrue(Exit.isFailure(exit), uri)
          if (!Exit.isFailure(exit)) continue
          const error = Cause.squash(exit.cause)
          assert.include(String(error), "MongoDB")
          assert.deepStrictEqual(secretsIn(Cause.pretty(exit.cause)), [], uri)
          // Logged as the service logs it, once without and once with scrubbing.
          const log = Effect.logError("the service stopped after a failure", exit.cause)
          const raw = yield* captureLogs(log)
          assert.deepStrictEqual(secretsIn(raw.lines.join("\n")), [], uri)
          const scrubbed = yield* captureLogs(log, undefined, secretsOfSettings(settings))
          assert.deepStrictEqual(secretsIn(scrubbed.lines.join("\n")), [])
        }
      }),
    30_000,
  )

  it.live(
    "the kafkajs SASL_SSL path: connection errors, kafkajs' own log lines and the error message",
    () =>
      Effect.gen(function* () {
        const { port } = yield* hangingUp
        const settings = yield* decodeSettings({
          ...env("mongodb://127.0.0.1:27017/"),
          KAFKA__BOOTSTRAP_SERVERS: `127.0.0.1:${port}`,
        })
        assert.isDefined(settings.kafka.sasl)
        const { result, lines } = yield* captureLogs(
          Effect.gen(function* () {
            const client = yield* KafkaClient
            const failure = yield* Effect.tryPromise({
              try: () => client.admin({ retry: { retries: 0 } }).connect(),
              catch: (cause) =>
                new KafkaConnectionError({ client: "admin", brokers: `127.0.0.1:${port}`, cause }),
            }).pipe(Effect.flip)
            // kafkajs logs from its own callbacks, forwarded on forked fibers: let them land.
            yield* Effect.sleep("100 millis")
            return failure
          }).pipe(Effect.provide(KafkaClient.layer.pipe(Layer.provide(Layer.succeed(AppConfig, settings))))),
        )
        assert.include(result.message, "cannot connect the Kafka admin")
        assert.deepStrictEqual(secretsIn(result.message), [])
        assert.deepStrictEqual(secretsIn(Cause.pretty(Cause.fail(result))), [])
        assert.isAbove(lines.length, 0, "kafkajs logged the failed connection")
        assert.deepStrictEqual(secretsIn(lines.join("\n")), [])
      }),
    // kafkajs retries the seed broker on its own schedule (about 9 s) whatever the admin's retry says.
    30_000,
  )
})
