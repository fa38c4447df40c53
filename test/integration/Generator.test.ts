import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import { type IHeaders, Kafka, logLevel } from "kafkajs"
import { main } from "../../src/Generator/Cli.js"
import { defaultRecordOptions, encode, generate, type RecordOptions } from "../../src/Generator/Records.js"
import type { Terminal } from "../../src/Generator/Run.js"
import { kafkaBrokers, unique } from "./support/Stack.js"

const kafka = new Kafka({ brokers: kafkaBrokers, logLevel: logLevel.NOTHING })
const admin = kafka.admin()

beforeAll(() => admin.connect())
afterAll(() => admin.disconnect())

interface Received {
  readonly key: string | null
  readonly value: Buffer
  readonly defect: string | undefined
}

const headerText = (headers: IHeaders | undefined, name: string): string | undefined => {
  const h = headers?.[name]
  return h === undefined ? undefined : String(Array.isArray(h) ? h[0] : h)
}

/** Reads `count` messages from the start of the topic (or fails after `timeoutMillis`). */
const readBack = async (topic: string, count: number, timeoutMillis = 60_000): Promise<Array<Received>> => {
  const consumer = kafka.consumer({ groupId: unique("generator-test"), maxBytes: 16 * 1_048_576 })
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  const received: Array<Received> = []
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`read ${received.length} of ${count} messages`)),
        timeoutMillis,
      )
      void consumer.run({
        eachMessage: async ({ message }) => {
          received.push({
            key: message.key === null ? null : message.key.toString(),
            value: message.value ?? Buffer.alloc(0),
            defect: headerText(message.headers, "x-defect"),
          })
          if (received.length >= count) {
            clearTimeout(timer)
            resolve()
          }
        },
      })
    })
  } finally {
    await consumer.disconnect()
  }
  return received
}

const quiet = (): Terminal & { text: () => string } => {
  const lines: Array<string> = []
  return { out: () => {}, err: (s) => lines.push(s), live: false, text: () => lines.join("") }
}

const createTopic = async (topic: string, configEntries: Array<{ name: string; value: string }> = []) => {
  await admin.createTopics({ topics: [{ topic, numPartitions: 3, configEntries }], waitForLeaders: true })
}

const sortKey = (r: { key: string | null; value: Buffer }) =>
  `${r.key} ${r.value.subarray(0, 200).toString()}`

describe("Generator -> Kafka", () => {
  it("produces N messages that a consumer reads back: same keys, bytes and x-defect headers", async () => {
    const topic = unique("generator-it")
    await createTopic(topic)
    const N = 3000
    const records: RecordOptions = {
      ...defaultRecordOptions,
      seed: 11,
      malformedRatio: 0.02,
      oversizedRatio: 0.002,
    }
    const argv = ["--output", "kafka", "--bootstrap-servers", kafkaBrokers.join(","), "--topic", topic]
    argv.push("--rate", "0", "--total", String(N), "--seed", "11", "--malformed-ratio", "0.02")
    argv.push("--oversized-ratio", "0.002")
    const terminal = quiet()
    await Effect.runPromise(main(argv, {}, terminal))
    assert.include(terminal.text(), `generate: done, ${N} messages`)

    const received = await readBack(topic, N)
    assert.strictEqual(received.length, N)
    const expected = [...generate(records, 0, N)].map((r) => ({
      key: r.key,
      value: encode(r),
      defect: r.defect,
    }))
    const oversized = expected.filter((r) => r.defect === "oversized")
    assert.isAbove(oversized.length, 0)
    assert.isTrue(oversized.every((r) => r.value.length === 1_048_577))
    const order = (rs: ReadonlyArray<Received>) =>
      [...rs].sort((a, b) => sortKey(a).localeCompare(sortKey(b)) || a.value.length - b.value.length)
    const got = order(received)
    const want = order(expected)
    for (let i = 0; i < N; i++) {
      const g = got[i] as Received
      const w = want[i] as Received
      assert.strictEqual(g.key, w.key)
      assert.isTrue(g.value.equals(w.value), `message ${i} (${w.key}) differs`)
      assert.strictEqual(g.defect, w.defect)
    }
  })

  it("keys messages by --partitions-key", async () => {
    const topic = unique("generator-it-keys")
    await createTopic(topic)
    const argv = ["--output", "kafka", "--bootstrap-servers", kafkaBrokers.join(","), "--topic", topic]
    argv.push("--rate", "0", "--total", "200", "--seed", "12", "--pattern", "valid")
    argv.push("--partitions-key", "customer.country")
    await Effect.runPromise(main(argv, {}, quiet()))
    const received = await readBack(topic, 200)
    for (const r of received) {
      const value = JSON.parse(r.value.toString()) as { customer: { country: string } }
      assert.strictEqual(r.key, value.customer.country)
    }
  })

  it("an oversized message the topic refuses is counted as an error; everything else arrives", async () => {
    const topic = unique("generator-it-small")
    await createTopic(topic, [{ name: "max.message.bytes", value: "100000" }])
    const N = 400
    const argv = ["--output", "kafka", "--bootstrap-servers", kafkaBrokers.join(","), "--topic", topic]
    argv.push("--rate", "0", "--total", String(N), "--seed", "13", "--oversized-ratio", "0.02")
    argv.push("--oversized-bytes", "200000")
    const expectedOversized = [
      ...generate({ ...defaultRecordOptions, seed: 13, oversizedRatio: 0.02, oversizedBytes: 200_000 }, 0, N),
    ].filter((r) => r.kind === "oversized").length
    assert.isAbove(expectedOversized, 0)
    const terminal = quiet()
    const exit = await Effect.runPromiseExit(main(argv, {}, terminal))
    assert.isTrue(Exit.isSuccess(exit), terminal.text())
    assert.include(terminal.text(), `generate: done, ${N - expectedOversized} messages`)
    assert.include(terminal.text(), `  errors      ${expectedOversized}\n`)
    const received = await readBack(topic, N - expectedOversized)
    assert.isTrue(received.every((r) => r.defect !== "oversized"))
  })
})
