import { execFileSync } from "node:child_process"
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Kafka, logLevel } from "kafkajs"
import { MongoClient, MongoServerError } from "mongodb"
import { kafkaBrokers, mongoUri, unique } from "./support/Stack.js"

describe("the local stack", () => {
  it("runs the tests on Node 22.19 or newer", () => {
    const [major = 0, minor = 0] = process.versions.node.split(".").map(Number)
    assert.isTrue(major > 22 || (major === 22 && minor >= 19), `Node ${process.version} is too old`)
  })

  it("produces and consumes a message through the real Kafka broker", async () => {
    const kafka = new Kafka({ brokers: kafkaBrokers, logLevel: logLevel.NOTHING })
    const topic = unique("stack-test")
    const admin = kafka.admin()
    await admin.connect()
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true })
    await admin.disconnect()

    const producer = kafka.producer({ idempotent: true })
    await producer.connect()
    await producer.send({
      topic,
      acks: -1,
      messages: [{ key: "k1", value: JSON.stringify({ hello: "kafka" }) }],
    })
    await producer.disconnect()

    const consumer = kafka.consumer({ groupId: unique("stack-test-group") })
    await consumer.connect()
    await consumer.subscribe({ topic, fromBeginning: true })
    const received = await new Promise<{ key: string; value: string }>((resolve) => {
      void consumer.run({
        eachMessage: async ({ message }) =>
          resolve({ key: String(message.key), value: String(message.value) }),
      })
    })
    await consumer.disconnect()
    assert.deepStrictEqual(received, { key: "k1", value: '{"hello":"kafka"}' })
  })

  it("inserts, upserts and reads back documents, and a unique index rejects a duplicate", async () => {
    const client = new MongoClient(mongoUri)
    await client.connect()
    try {
      const collection = client.db(unique("stacktest")).collection<{ key: string; n: number }>("docs")
      await collection.createIndex({ key: 1 }, { unique: true })
      await collection.insertOne({ key: "a", n: 1 })
      await collection.updateOne({ key: "b" }, { $set: { n: 2 } }, { upsert: true })
      await collection.updateOne({ key: "a" }, { $set: { n: 3 } }, { upsert: true })
      const docs = await collection.find({}).sort({ key: 1 }).toArray()
      assert.deepStrictEqual(
        docs.map(({ key, n }) => ({ key, n })),
        [
          { key: "a", n: 3 },
          { key: "b", n: 2 },
        ],
      )
      const duplicate = await collection.insertOne({ key: "a", n: 4 }).then(
        () => undefined,
        (e: unknown) => e,
      )
      assert.instanceOf(duplicate, MongoServerError)
      assert.strictEqual((duplicate as MongoServerError).code, 11000)
      await client.db(collection.dbName).dropDatabase()
    } finally {
      await client.close()
    }
  })
})

describe("the stack's secrets", () => {
  it("keytool gets the keystore password from its file, and the security folder is private", () => {
    const dir = mkdtempSync(join(tmpdir(), "stack-security-"))
    try {
      // A keytool in front of the real one that writes down every command line it is given.
      const bin = join(dir, "bin")
      mkdirSync(bin)
      const calls = join(dir, "keytool-calls")
      writeFileSync(
        join(bin, "keytool"),
        `#!/bin/sh\nprintf '%s\\n' "$*" >> '${calls}'\nexec '${execFileSync("sh", ["-c", "command -v keytool"], { encoding: "utf8" }).trim()}' "$@"\n`,
        { mode: 0o755 },
      )
      const stackDir = join(dir, "stack")
      execFileSync(
        process.execPath,
        ["--import", "tsx", "-e", "import('./scripts/stack.ts').then((m) => m.ensureKafkaSecurity())"],
        { env: { ...process.env, STACK_DIR: stackDir, PATH: `${bin}:${process.env.PATH ?? ""}` } },
      )
      const security = join(stackDir, "kafka", "security")
      const password = readFileSync(join(security, "keystore.password"), "utf8").trim()
      const commandLines = readFileSync(calls, "utf8")
      assert.include(commandLines, "-storepass:file")
      assert.notInclude(commandLines, password)
      // The keystore opens with the password of that file.
      execFileSync("keytool", [
        "-list",
        "-keystore",
        join(security, "broker.p12"),
        "-storetype",
        "PKCS12",
        "-storepass:file",
        join(security, "keystore.password"),
      ])
      assert.strictEqual(statSync(security).mode & 0o777, 0o700)
      const files = readdirSync(security)
      assert.sameMembers(files, [
        "broker.p12",
        "ca.pem",
        "keystore.password",
        "pipeline.password",
        "broker.pem",
      ])
      for (const file of files) assert.strictEqual(statSync(join(security, file)).mode & 0o777, 0o600, file)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
