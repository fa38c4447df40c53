/**
 * The producer side of the kafkajs patch (patches/kafkajs+2.2.4.patch): records encoded into one
 * buffer of their exact size give the bytes of the record format as Kafka defines it, a send's
 * messages keep their order within each partition, and keys hash as the Java client hashes them.
 * On the consumer side, a record's offset and timestamp come out as the Long arithmetic gives them.
 */
import { createRequire } from "node:module"
import { assert, describe, it } from "@effect/vitest"
import { requirePatchedEncoder, requireRejoinHook } from "../../src/Kafka/KafkajsPatch.js"

const require = createRequire(import.meta.url)

type Bytes = string | Buffer | null | undefined
type Headers = Record<string, Bytes | Bytes[]>
interface Encoded {
  readonly buf: Buffer
  readonly offset: number
  readonly buffer: Buffer
}
interface RecordFields {
  key?: Bytes
  value?: Bytes
  headers?: Headers
  offsetDelta?: number
  timestampDelta?: number
}
interface EncoderClass {
  new (): Encoded & {
    writeVarLong(value: unknown): Encoded
  }
  sizeOfVarLong(value: unknown): number
}
interface Decoder {
  readInt16(): number
  readInt32(): number
  readString(): string | null
  readBytes(length: number): Buffer
}
interface Message {
  key: string
  value: string
  headers: Headers
}
interface DecodedRecord {
  readonly key: Buffer | null
  readonly value: Buffer | null
  readonly headers: Record<string, Buffer | null | Array<Buffer | null>>
}

const encodeRecord = require("kafkajs/src/protocol/recordBatch/record/v0") as (
  record: RecordFields,
) => Encoded
const Encoder = require("kafkajs/src/protocol/encoder") as EncoderClass
const Long = require("kafkajs/src/utils/long") as { fromValue(value: unknown): unknown }
const DecoderClass = require("kafkajs/src/protocol/decoder") as new (buffer: Buffer) => Decoder
const decodeRecordBatch = require("kafkajs/src/protocol/recordBatch/v0/decoder") as (
  decoder: Decoder,
) => Promise<{ records: DecodedRecord[] }>
const crc32C = require("kafkajs/src/protocol/recordBatch/crc32C") as (buffer: Buffer) => number
const murmur2 = require("kafkajs/src/producer/partitioners/default/murmur2") as (
  key: string | Buffer,
) => number
const groupMessagesPerPartition = require("kafkajs/src/producer/groupMessagesPerPartition") as (args: {
  topic: string
  partitionMetadata: Array<{ partitionId: number; leader: number }>
  messages: Message[]
  partitioner: (args: { message: Message }) => number
}) => Record<string, Message[]>
const createPartitioner = require("kafkajs/src/producer/partitioners/default") as () => (
  args: unknown,
) => number
const produceRequest = require("kafkajs/src/protocol/requests/produce/v3/request") as (args: unknown) => {
  encode(): Promise<Encoded>
}

// -- the record format, written from its definition (Kafka's DefaultRecord), one byte at a time --

const varint = (value: bigint): number[] => {
  let zigZag = BigInt.asUintN(64, (value << 1n) ^ (value >> 63n))
  const out: number[] = []
  while (zigZag >= 128n) {
    out.push(Number(zigZag & 127n) | 128)
    zigZag >>= 7n
  }
  out.push(Number(zigZag))
  return out
}
const bytesField = (value: Bytes): number[] => {
  if (value === null || value === undefined) return varint(-1n)
  const bytes = typeof value === "string" ? Buffer.from(value, "utf8") : value
  return [...varint(BigInt(bytes.length)), ...bytes]
}
const referenceRecord = ({
  key,
  value,
  headers = {},
  offsetDelta = 0,
  timestampDelta = 0,
}: RecordFields): Buffer => {
  const flat = Object.keys(headers).flatMap((name) => {
    const v = headers[name]
    return Array.isArray(v) ? v.map((item) => [name, item] as const) : [[name, v] as const]
  })
  const body = [
    0,
    ...varint(BigInt(timestampDelta)),
    ...varint(BigInt(offsetDelta)),
    ...bytesField(key),
    ...bytesField(value),
    ...varint(BigInt(flat.length)),
    ...flat.flatMap(([name, v]) => [...bytesField(name), ...bytesField(v)]),
  ]
  return Buffer.from([...varint(BigInt(body.length)), ...body])
}

const protoHeaders = (): Headers => {
  const headers: Headers = {}
  Object.defineProperty(headers, "__proto__", {
    value: Buffer.from("p"),
    enumerable: true,
    writable: true,
    configurable: true,
  })
  headers["constructor"] = "c"
  return headers
}

const cases: ReadonlyArray<readonly [string, RecordFields]> = [
  ["an empty record", {}],
  ["null key and value", { key: null, value: null }],
  ["empty strings", { key: "", value: "", headers: { "": "" } }],
  [
    "a sink message",
    {
      key: "customer-100042",
      value: JSON.stringify({ id: 100_042, name: "Ünïcode ✓ 😀", tags: ["a", "b"] }),
      headers: {
        traceparent: Buffer.from("00-abc-01"),
        "pipeline.correlation_id": "0f8e1c2a",
        "pipeline.source.topic": "source",
        "pipeline.source.partition": "2",
        "pipeline.source.offset": "1000042",
      },
      offsetDelta: 499,
    },
  ],
  ["null and undefined header values", { key: "k", value: "v", headers: { a: null, b: undefined, c: "x" } }],
  [
    "repeated header names",
    { key: Buffer.from([0, 255]), value: "v", headers: { h: ["1", null, Buffer.from("3")], e: [] } },
  ],
  ["integer-like header names first, as objects order them", { headers: { z: "1", "10": "2", "2": "3" } }],
  [
    "header names kafkajs' decoder keeps as own properties",
    { key: "k", value: "v", headers: protoHeaders() },
  ],
  ["a value over 16 KB (a 3-byte length)", { key: "k", value: "x".repeat(20_000), offsetDelta: 70_000 }],
  ["a value over 512 bytes in a Buffer", { key: null, value: Buffer.alloc(3000, 7) }],
  ["a lone surrogate", { key: "\ud800", value: "a\udc00b", headers: { "\ud83d": "\ude00" } }],
  ["a negative timestamp delta", { key: "k", value: "v", timestampDelta: -1234 }],
  ["a timestamp delta past 32 bits", { key: "k", value: "v", timestampDelta: 2 ** 40 + 17 }],
]

describe("the patched record encoder", () => {
  for (const [name, record] of cases) {
    it(`writes the record format's bytes: ${name}`, () => {
      const encoded = encodeRecord(record)
      assert.deepStrictEqual(encoded.buffer, referenceRecord(record))
      assert.strictEqual(encoded.buf.length, encoded.offset, "one buffer of the record's exact size")
    })
  }

  it("writes what kafkajs' decoder reads back: keys, values and headers byte for byte, null headers null", async () => {
    const messages: Message[] = Array.from({ length: 40 }, (_, i) => ({
      key: `key-${i}`,
      value: JSON.stringify({ i, text: "é".repeat(i * 40) }),
      headers: {
        "pipeline.source.offset": String(i),
        ...(i % 3 === 0 ? { empty: null } : {}),
        many: ["a", `${i}`],
      },
    }))
    const request = produceRequest({
      acks: -1,
      timeout: 1000,
      topicData: [{ topic: "t", partitions: [{ partition: 0, firstSequence: 0, messages }] }],
    })
    const decoder = new DecoderClass((await request.encode()).buffer)
    assert.strictEqual(decoder.readString(), null) // transactional id
    decoder.readInt16() // acks
    decoder.readInt32() // timeout
    assert.strictEqual(decoder.readInt32(), 1) // topics
    assert.strictEqual(decoder.readString(), "t")
    assert.strictEqual(decoder.readInt32(), 1) // partitions
    assert.strictEqual(decoder.readInt32(), 0)
    const batch = decoder.readBytes(decoder.readInt32())
    // The CRC covers the batch from its attributes to its end (after offset, length, epoch, magic, crc).
    assert.strictEqual(batch.readUInt32BE(17), crc32C(batch.subarray(21)))
    const { records } = await decodeRecordBatch(new DecoderClass(batch))
    assert.strictEqual(records.length, messages.length)
    records.forEach((record, i) => {
      const message = messages[i] as Message
      assert.deepStrictEqual(record.key, Buffer.from(message.key))
      assert.deepStrictEqual(record.value, Buffer.from(message.value))
      assert.deepStrictEqual(record.headers, {
        "pipeline.source.offset": Buffer.from(String(i)),
        ...(i % 3 === 0 ? { empty: null } : {}),
        many: [Buffer.from("a"), Buffer.from(`${i}`)],
      })
    })
  })

  it("writes a number's varlong as its Long would be written", () => {
    const values = [
      0,
      -0,
      1,
      -1,
      63,
      -64,
      64,
      127,
      128,
      2 ** 31,
      -(2 ** 31) - 1,
      2 ** 35,
      2 ** 51 - 1,
      -(2 ** 51) + 1,
    ]
    for (const value of values) {
      const fast = new Encoder().writeVarLong(value).buffer
      const long = new Encoder().writeVarLong(Long.fromValue(value)).buffer
      assert.deepStrictEqual(fast, long, String(value))
      assert.deepStrictEqual([...fast], varint(BigInt(value)), String(value))
      assert.strictEqual(Encoder.sizeOfVarLong(value), fast.length, String(value))
    }
  })

  it("is what the service checks for at start", () => {
    requirePatchedEncoder()
  })

  it("the consumer's hook before a rebalance's rejoin is there too", () => {
    requireRejoinHook()
  })
})

interface DecodedOffsets {
  readonly offset: string
  readonly timestamp: string
}
const decodeRecord = require("kafkajs/src/protocol/recordBatch/record/v0/decoder") as (
  decoder: unknown,
  context: Record<string, unknown>,
) => DecodedOffsets

describe("the patched record decoder", () => {
  /** A record's offset and timestamp read back from a batch that starts at `firstOffset` and `firstTimestamp`. */
  const readBack = (
    firstOffset: string,
    firstTimestamp: string,
    offsetDelta: number,
    timestampDelta: number,
  ) => {
    const encoded = encodeRecord({ key: "k", value: "v", headers: {}, offsetDelta, timestampDelta }).buffer
    const decoder = new DecoderClass(encoded) as unknown as { readVarInt(): number }
    decoder.readVarInt() // the record's length
    return decodeRecord(decoder, { firstOffset, firstTimestamp, magicByte: 2, timestampType: 0 })
  }

  it("gives the offset and timestamp the Long sums give, whatever their size", () => {
    const cases: ReadonlyArray<readonly [string, string, number, number]> = [
      ["0", "0", 0, 0],
      ["123456789", "1764700000000", 499, 1500],
      ["5", "1764700000000", 3, -1500],
      ["9007199254740990", "1764700000000", 7, 2 ** 48 + 3],
      ["9223372036854775000", "9007199254740000", 700, 2 ** 40],
      ["1", "1764700000000", 1, 2 ** 51 - 1],
      ["1", "1764700000000", 1, -(2 ** 51) + 1],
      ["-1", "-1", 0, -(2 ** 48)],
    ]
    for (const [firstOffset, firstTimestamp, offsetDelta, timestampDelta] of cases) {
      const { offset, timestamp } = readBack(firstOffset, firstTimestamp, offsetDelta, timestampDelta)
      const label = `${firstOffset} + ${offsetDelta}, ${firstTimestamp} + ${timestampDelta}`
      assert.strictEqual(offset, (BigInt(firstOffset) + BigInt(offsetDelta)).toString(), label)
      assert.strictEqual(timestamp, (BigInt(firstTimestamp) + BigInt(timestampDelta)).toString(), label)
    }
  })
})

describe("the patched producer", () => {
  it("groups a send's messages by partition, each partition's in the order sent", () => {
    const messages: Message[] = Array.from({ length: 2000 }, (_, i) => ({
      key: `k${i}`,
      value: String(i),
      headers: {},
    }))
    const partitionMetadata = [0, 1, 2, 3].map((partitionId) => ({ partitionId, leader: 0 }))
    const grouped = groupMessagesPerPartition({
      topic: "t",
      partitionMetadata,
      messages,
      partitioner: ({ message }) => Number(message.value) % 4,
    })
    assert.deepStrictEqual(Object.keys(grouped), ["0", "1", "2", "3"])
    for (const [partition, list] of Object.entries(grouped))
      assert.deepStrictEqual(
        list.map((m) => Number(m.value)),
        messages.map((m) => Number(m.value)).filter((v) => v % 4 === Number(partition)),
      )
  })

  it("hashes keys as the Java client's murmur2 does", () => {
    // Kafka's own test vectors (UtilsTest.testMurmur2).
    const vectors: ReadonlyArray<readonly [string, number]> = [
      ["21", -973932308],
      ["foobar", -790332482],
      ["a-little-bit-long-string", -985981536],
      ["a-little-bit-longer-string", -1486304829],
      ["lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971],
      ["abc", 479470107],
    ]
    for (const [key, hash] of vectors) {
      assert.strictEqual(murmur2(key), hash, key)
      assert.strictEqual(murmur2(Buffer.from(key)), hash, key)
    }
  })

  it("sends a key to the partition the Java client would", () => {
    const partitioner = createPartitioner()
    const partitionMetadata = Array.from({ length: 12 }, (_, partitionId) => ({ partitionId, leader: 0 }))
    const partitionOf = (key: string) => partitioner({ topic: "t", partitionMetadata, message: { key } })
    // toPositive(murmur2(key)) % 12, with the vectors above.
    assert.strictEqual(partitionOf("21"), (-973932308 & 0x7fffffff) % 12)
    assert.strictEqual(partitionOf("foobar"), (-790332482 & 0x7fffffff) % 12)
  })
})
