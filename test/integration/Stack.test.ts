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
