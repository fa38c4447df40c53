/**
 * The Java-client harness (test/support/JavaProducer.ts) against the real broker: for each
 * codec, 200 records go in one batch with awkward headers (names that are special to JavaScript
 * objects, non-ASCII names, a repeated name, null and empty values), get consecutive offsets,
 * and a Java read_committed consumer reads back exactly the bytes sent, in order. A transaction
 * aborted and then one committed: only the committed one is read. (kafkajs reads none of these
 * topics here: it cannot decode snappy, lz4 or zstd by itself.)
 */
import { existsSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { settings } from "../../scripts/stack.js"
import {
  consumeWithJava,
  type JavaBytes,
  type JavaConsumed,
  type JavaRecord,
  produceWithJava,
} from "../support/JavaProducer.js"
import { createTopic } from "./support/Service.js"
import { unique } from "./support/Stack.js"

const codecs = ["gzip", "snappy", "lz4", "zstd", "none"] as const
/** The codec ids of a record batch's attributes (bits 0-2). */
const codecIds: Record<(typeof codecs)[number], number> = { none: 0, gzip: 1, snappy: 2, lz4: 3, zstd: 4 }

const bytes = (b: JavaBytes | null | undefined): Buffer | null =>
  b === null || b === undefined ? null : typeof b === "string" ? Buffer.from(b, "utf8") : b

/** Record i of a run: text, binary and null values and keys, the same awkward headers on each. */
const record = (i: number): JavaRecord => ({
  partition: 0,
  key: i % 7 === 0 ? null : i % 11 === 0 ? Buffer.from([0xff, 0x00, i % 256]) : `key-${i}`,
  value:
    i % 10 === 3
      ? null
      : i % 10 === 5
        ? Buffer.from(Array.from({ length: 64 }, (_, j) => (i * 31 + j * 7) % 256))
        : JSON.stringify({ id: i, text: "ordre n°", note: "ünïcødé 🙂 ".repeat(1 + (i % 4)) }),
  headers: [
    { name: "__proto__", value: `proto-${i}` },
    { name: "constructor", value: Buffer.from([0, 1, 2, 0xfe, 0xff]) },
    { name: "ünïcødé 🙂", value: "välue" },
    { name: "repeated", value: "first" },
    { name: "nothing", value: null },
    { name: "repeated", value: "second" },
    { name: "empty", value: Buffer.alloc(0) },
    { name: "", value: "no name" },
  ],
})

/** What was sent, in the shape the Java consumer reads it, for a deep comparison. */
const expected = (r: JavaRecord, offset: number) => ({
  partition: 0,
  offset: String(offset),
  key: bytes(r.key),
  value: bytes(r.value),
  headers: (r.headers ?? []).map((h) => ({ name: h.name, value: bytes(h.value) })),
})
const read = (r: JavaConsumed) => ({
  partition: r.partition,
  offset: r.offset,
  key: r.key,
  value: r.value,
  headers: r.headers,
})

interface Batch {
  readonly baseOffset: bigint
  readonly records: number
  readonly codec: number
}

/**
 * The record batches of partition 0 as the broker stored them (its first log segment), or
 * undefined when the broker on the port is not this stack's own (its data are elsewhere). Batch
 * header: baseOffset int64, length int32, leader epoch int32, magic int8, crc int32, attributes
 * int16 (@21), ... records count int32 (@57).
 */
const batchesOf = (topic: string): ReadonlyArray<Batch> | undefined => {
  const file = join(settings.dir, "kafka", "data", `${topic}-0`, "00000000000000000000.log")
  if (!existsSync(file)) return undefined
  const log = readFileSync(file)
  const batches: Batch[] = []
  for (let at = 0; at + 61 <= log.length; at += 12 + log.readInt32BE(at + 8)) {
    batches.push({
      baseOffset: log.readBigInt64BE(at),
      records: log.readInt32BE(at + 57),
      codec: log.readInt16BE(at + 21) & 0x7,
    })
  }
  return batches
}

describe("producing with the Java client", () => {
  for (const compression of codecs) {
    it(`${compression}: 200 records in one batch, read back byte for byte with their headers`, async () => {
      const topic = unique(`java-${compression}`)
      await createTopic(topic, 1)
      const records = Array.from({ length: 200 }, (_, i) => record(i))
      const produced = await produceWithJava({
        topic,
        compression,
        lingerMs: 5_000,
        batchSize: 1_000_000,
        records,
      })
      assert.deepStrictEqual(
        produced,
        records.map((_, i) => ({ partition: 0, offset: String(i) })),
        "consecutive offsets in input order",
      )
      const batches = batchesOf(topic)
      if (batches !== undefined) {
        assert.deepStrictEqual(batches, [{ baseOffset: 0n, records: 200, codec: codecIds[compression] }])
      }
      const back = await consumeWithJava({ topic, count: records.length })
      assert.deepStrictEqual(
        back.map(read),
        records.map((r, i) => expected(r, i)),
      )
    })
  }

  it("transactions: an aborted one is never read with read_committed, a committed one is", async () => {
    const topic = unique("java-tx")
    await createTopic(topic, 1)
    const transactionalId = unique("java-tx-producer")
    const batch = (what: string) =>
      [0, 1, 2].map((i) => ({ partition: 0, key: `${what}-${i}`, value: what, headers: [] }))
    const aborted = await produceWithJava({
      topic,
      compression: "zstd",
      transactionalId,
      abort: true,
      records: batch("aborted"),
    })
    const committed = await produceWithJava({
      topic,
      compression: "zstd",
      transactionalId,
      records: batch("committed"),
    })
    // Each transaction ends with its marker: the aborted one at offset 3.
    assert.deepStrictEqual(
      [...aborted, ...committed].map((p) => p.offset),
      ["0", "1", "2", "4", "5", "6"],
    )
    const seen = await consumeWithJava({ topic })
    assert.deepStrictEqual(
      seen.map((r) => [r.offset, r.key?.toString()]),
      [
        ["4", "committed-0"],
        ["5", "committed-1"],
        ["6", "committed-2"],
      ],
    )
    const everything = await consumeWithJava({ topic, isolationLevel: "read_uncommitted" })
    assert.deepStrictEqual(
      everything.map((r) => r.value?.toString()),
      ["aborted", "aborted", "aborted", "committed", "committed", "committed"],
    )
  })
})
