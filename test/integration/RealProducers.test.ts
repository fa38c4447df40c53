/**
 * Input as producers in the wild send it, not as kafkajs does: record batches compressed with
 * each codec Kafka defines and headers of every kind, produced by the Java client
 * (kafka-clients 4.1.2), read by the service at its defaults with the shipped pipeline, against
 * the real broker and FerretDB. Every source message must end on the sink topic (and its key in
 * MongoDB) or on the dead-letter topic with its original bytes and headers, exactly once; and
 * what the service writes (compressed with KAFKA__COMPRESSION) must be read by the Java client.
 */
import { afterAll, assert, describe, it } from "@effect/vitest"
import type { Message } from "kafkajs"
import { encode, generate, type RecordOptions } from "../../src/Generator/Records.js"
import { type CompressionName, compressionTypes } from "../../src/Kafka/Codecs.js"
import {
  consumeWithJava,
  type JavaConsumed,
  type JavaHeader,
  produceWithJava,
} from "../support/JavaProducer.js"
import {
  createTopic,
  defaultServiceEnv,
  drain,
  dropDatabase,
  freshNames,
  kafka,
  mongoIds,
} from "./support/Service.js"

const databases: string[] = []
afterAll(async () => {
  for (const db of databases) await dropDatabase(db).catch(() => undefined)
})

const mixed = (seed: number): RecordOptions => ({
  seed,
  pattern: "mixed",
  invalidRatio: 0.2,
  // Duplicates would be counted, not written: this test accounts for every message by where it went.
  duplicateRatio: 0,
  malformedRatio: 0.05,
  oversizedRatio: 0,
  oversizedBytes: 0,
  baseTime: Date.UTC(2026, 11, 3),
})

/** Headers whose names are special to JavaScript objects, repeated, empty, non-ASCII, with null and binary values. */
const awkwardHeaders: ReadonlyArray<JavaHeader> = [
  { name: "__proto__", value: "proto-value" },
  { name: "constructor", value: "constructor-value" },
  { name: "toString", value: "to-string-value" },
  { name: "hasOwnProperty", value: null },
  { name: "", value: "empty-name" },
  { name: "ünïcødé 🙂", value: "ünïcødé value" },
  { name: "dup", value: "first" },
  { name: "dup", value: "second" },
  { name: "binary", value: Buffer.from([0, 255, 1, 254, 0x80]) },
  { name: "dup", value: "third" },
  { name: "traceparent", value: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" },
]

/** Every value of every name, in the order they came (a repeated name's values stay in order). */
const byName = (
  headers: ReadonlyArray<{ readonly name: string; readonly value: Buffer | string | null }>,
) => {
  const out = new Map<string, Array<string | null>>()
  for (const h of headers) {
    const value = h.value === null ? null : Buffer.from(h.value).toString("hex")
    out.set(h.name, [...(out.get(h.name) ?? []), value])
  }
  return out
}

const header = (message: JavaConsumed, name: string): string | undefined => {
  const found = message.headers.find((h) => h.name === name)
  return found?.value?.toString()
}

const coordinates = (message: JavaConsumed) =>
  `${header(message, "pipeline.source.partition")}:${header(message, "pipeline.source.offset")}`

describe("input from producers in the wild", () => {
  it("reads record batches of every codec: each message ends on the sink topic or the dead-letter topic, once, with its bytes", async () => {
    const names = freshNames("codecs")
    databases.push(names.database)
    const codecs = ["gzip", "snappy", "lz4", "zstd"] as const
    await createTopic(names.source, codecs.length)
    const sent = new Map<string, { value: Buffer; key: string | null }>()
    for (const [partition, compression] of codecs.entries()) {
      const records = [...generate(mixed(100 + partition), 0, 400)].map((r) => ({
        partition,
        key: r.key,
        value: encode(r),
        headers: [{ name: "x-codec", value: compression }],
      }))
      // One producer batch per partition, as a Java producer with linger and a large batch makes them.
      const produced = await produceWithJava({
        topic: names.source,
        compression,
        lingerMs: 200,
        batchSize: 4 * 1_048_576,
        records,
      })
      for (const [i, p] of produced.entries()) sent.set(`${p.partition}:${p.offset}`, records[i]!)
    }

    const { code, output } = await drain(defaultServiceEnv(names), names, 120_000)
    assert.strictEqual(code, 0, output)
    assert.notInclude(output, "KafkaJSNotImplemented")

    // What the service wrote (lz4 by default) is read back by the Java client.
    const sink = await consumeWithJava({ topic: names.sink, timeoutMs: 60_000 })
    const dlq = await consumeWithJava({ topic: names.dlq, timeoutMs: 60_000 })
    const seen = new Map<string, string>()
    for (const m of sink) {
      assert.isFalse(seen.has(coordinates(m)), `twice: ${coordinates(m)}`)
      seen.set(coordinates(m), "sink")
    }
    for (const m of dlq) {
      assert.isFalse(seen.has(coordinates(m)), `twice: ${coordinates(m)}`)
      seen.set(coordinates(m), "dlq")
      const original = sent.get(coordinates(m))
      assert.isDefined(original, `a dead letter of no source message: ${coordinates(m)}`)
      assert.isTrue(m.value?.equals(original!.value), `dead letter ${coordinates(m)} lost its original bytes`)
      assert.strictEqual(m.key?.toString() ?? null, original!.key)
      assert.strictEqual(header(m, "x-codec"), codecs[Number(header(m, "pipeline.source.partition"))])
    }
    assert.deepStrictEqual([...seen.keys()].sort(), [...sent.keys()].sort(), "every source message, once")
    for (const partition of codecs.keys()) {
      const ended = [...seen].filter(([c]) => c.startsWith(`${partition}:`)).map(([, where]) => where)
      assert.include(ended, "sink", `partition ${partition} (${codecs[partition]}) wrote nothing`)
      assert.include(ended, "dlq", `partition ${partition} (${codecs[partition]}) dead-lettered nothing`)
    }
    const ids = new Set(await mongoIds(names.database))
    assert.deepStrictEqual(new Set(sink.map((m) => m.key?.toString() ?? "")), ids)
    for (const m of sink)
      assert.strictEqual(header(m, "x-codec"), codecs[Number(header(m, "pipeline.source.partition"))])
  })

  it("keeps headers of any name byte-exact on the sink topic and in dead letters, however many", async () => {
    const names = freshNames("headers")
    databases.push(names.database)
    await createTopic(names.source, 1)
    const [valid, other, many] = [...generate({ ...mixed(7), pattern: "valid", malformedRatio: 0 }, 0, 3)]
    const malformed = Buffer.from('{"event_id": "malformed-1", "order": {')
    const lots: ReadonlyArray<JavaHeader> = Array.from({ length: 20_000 }, (_, i) => ({
      name: `h-${i}`,
      value: `v-${i}`,
    }))
    const records = [
      { key: valid!.key, value: encode(valid!), headers: awkwardHeaders },
      { key: "malformed-1", value: malformed, headers: awkwardHeaders },
      { key: many!.key, value: encode(many!), headers: lots },
      { key: other!.key, value: encode(other!), headers: [] },
    ]
    await produceWithJava({ topic: names.source, compression: "zstd", records })

    const { code, output } = await drain(defaultServiceEnv(names), names)
    assert.strictEqual(code, 0, output)
    const sink = await consumeWithJava({ topic: names.sink, timeoutMs: 60_000 })
    const dlq = await consumeWithJava({ topic: names.dlq, timeoutMs: 60_000 })

    assert.strictEqual(sink.length, 3, output)
    const ownHeaders = (m: JavaConsumed) => m.headers.filter((h) => !h.name.startsWith("pipeline."))
    const sunk = new Map(sink.map((m) => [m.key?.toString() ?? null, m]))
    assert.deepStrictEqual(byName(ownHeaders(sunk.get(valid!.key)!)), byName(awkwardHeaders))
    assert.deepStrictEqual(byName(ownHeaders(sunk.get(many!.key)!)), byName(lots))
    assert.deepStrictEqual(ownHeaders(sunk.get(other!.key)!), [])
    assert.strictEqual(header(sunk.get(valid!.key)!, "pipeline.source.offset"), "0")

    assert.strictEqual(dlq.length, 1)
    const letter = dlq[0]!
    assert.isTrue(letter.value?.equals(malformed), "the dead letter keeps the original bytes")
    assert.deepStrictEqual(byName(ownHeaders(letter)), byName(awkwardHeaders))
    assert.strictEqual(header(letter, "pipeline.error.stage"), "parse")
    assert.deepStrictEqual(
      new Set(await mongoIds(names.database)),
      new Set([valid!.key, many!.key, other!.key]),
    )
  })

  it("writes record batches the Java client reads, with each codec KAFKA__COMPRESSION names", async () => {
    // kafkajs with the codecs the service registers (support/Service.ts registers them too).
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
    await producer.connect()
    try {
      for (const codec of Object.keys(compressionTypes) as ReadonlyArray<CompressionName>) {
        const topic = freshNames(`written-${codec}`).source
        await createTopic(topic, 1)
        const messages: Message[] = Array.from({ length: 3_000 }, (_, i) => ({
          key: `k-${i}`,
          value: JSON.stringify({ i, text: "a value that compresses ".repeat(i % 40) }),
          // fromEntries makes "__proto__" an own property, as the patched decoder does.
          headers: Object.fromEntries([
            ["__proto__", `p-${i}`],
            ["n", String(i)],
          ]),
        }))
        await producer.send({ topic, acks: -1, compression: compressionTypes[codec], messages })
        const read = await consumeWithJava({ topic, count: messages.length, timeoutMs: 60_000 })
        assert.strictEqual(read.length, messages.length, codec)
        read.forEach((m, i) => {
          assert.strictEqual(m.value?.toString(), messages[i]!.value, `${codec} #${i}`)
          assert.strictEqual(header(m, "__proto__"), `p-${i}`)
        })
      }
    } finally {
      await producer.disconnect()
    }
  })
})
