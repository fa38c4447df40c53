/**
 * Decoding one record with N headers: kafkajs' record decoder as patched by npm ci
 * (patches/kafkajs+2.2.4.patch: one pass over the decoded headers, every name an own property)
 * against the same decoder with kafkajs 2.2.4's original header fold (a `reduce` that spreads
 * the object built so far for every header, so its time grows with the square of N), both in
 * this process on the same bytes, made by kafkajs' own record encoder.
 *
 * Two header sets per N: distinct names (h0, h1, ...) and ten names repeated (each name's
 * values collect into an array). Time per record is the median of the rounds; each round runs
 * the decoder until at least `min-ms-per-round` have passed, after one round of warm-up.
 *
 * Run with `npm run bench -- headers [rounds] [min-ms-per-round] [largest-N]`.
 */

import { createRequire } from "node:module"
import { isDeepStrictEqual } from "node:util"

const require = createRequire(import.meta.url)

interface KafkaDecoder {
  readonly buffer: Buffer
  readInt8(): number
  readVarLong(): unknown
  readVarInt(): number
  readVarIntBytes(): Buffer | null
  readVarIntArray<T>(reader: (decoder: KafkaDecoder) => T): T[]
}
type DecoderClass = new (buffer: Buffer) => KafkaDecoder
type Headers = Record<string, Buffer | null | Array<Buffer | null>>
interface BatchContext {
  readonly firstOffset: string
  readonly firstTimestamp: string
  readonly magicByte: number
  readonly isControlBatch: boolean
  readonly timestampType: number
  readonly maxTimestamp: string
}
interface DecodedRecord {
  readonly offset: string
  readonly key: Buffer | null
  readonly value: Buffer | null
  readonly headers: Headers
}
type RecordDecoder = (decoder: KafkaDecoder, batchContext: BatchContext) => DecodedRecord
interface Long {
  add(other: unknown): { toString(): string }
}

const Decoder = require("kafkajs/src/protocol/decoder") as DecoderClass
const encodeRecord = require("kafkajs/src/protocol/recordBatch/record/v0/index.js") as (record: {
  key: Buffer
  value: Buffer
  headers: Record<string, Buffer | Buffer[]>
}) => { readonly buffer: Buffer }
const patchedDecoder = require("kafkajs/src/protocol/recordBatch/record/v0/decoder.js") as RecordDecoder
const HeaderDecoder = require("kafkajs/src/protocol/recordBatch/header/v0/decoder.js") as (
  decoder: KafkaDecoder,
) => { key: string; value: Buffer | null }
const LongClass = require("kafkajs/src/utils/long") as { fromValue(value: unknown): Long }
const TimestampTypes = require("kafkajs/src/protocol/timestampTypes") as { LOG_APPEND_TIME: number }

// -- the baseline: kafkajs 2.2.4's record decoder as published, before the patch ------------------

/** The original fold of kafkajs 2.2.4 (the lines the patch removes), unchanged. */
const originalHeaders = (decoder: KafkaDecoder): Headers =>
  decoder.readVarIntArray(HeaderDecoder).reduce(
    (obj: Headers, { key, value }) => ({
      // biome-ignore lint/performance/noAccumulatingSpread: the quadratic fold is what is measured
      ...obj,
      [key]:
        obj[key] === undefined
          ? value
          : Array.isArray(obj[key])
            ? obj[key].concat([value])
            : [obj[key], value],
    }),
    {},
  )

/**
 * The rest of the original decoder is the same as the patched one; only the fold differs. With
 * `fold` false the header array is left as it is decoded: the work both folds start from.
 */
const decoderWith =
  (fold: boolean): RecordDecoder =>
  (decoder, batchContext) => {
    const {
      firstOffset,
      firstTimestamp,
      magicByte,
      isControlBatch = false,
      timestampType,
      maxTimestamp,
    } = batchContext
    const attributes = decoder.readInt8()
    const timestampDelta = decoder.readVarLong()
    const timestamp =
      timestampType === TimestampTypes.LOG_APPEND_TIME && maxTimestamp
        ? maxTimestamp
        : LongClass.fromValue(firstTimestamp).add(timestampDelta).toString()
    const offsetDelta = decoder.readVarInt()
    const offset = LongClass.fromValue(firstOffset).add(offsetDelta).toString()
    const key = decoder.readVarIntBytes()
    const value = decoder.readVarIntBytes()
    const headers = fold ? originalHeaders(decoder) : decoder.readVarIntArray(HeaderDecoder)
    return {
      magicByte,
      attributes,
      timestamp,
      offset,
      key,
      value,
      headers,
      isControlRecord: isControlBatch,
      batchContext,
    } as DecodedRecord
  }

const originalDecoder = decoderWith(true)
const unfoldedDecoder = decoderWith(false)

// -- the records -------------------------------------------------------------------------------

const batchContext: BatchContext = {
  firstOffset: "1000",
  firstTimestamp: String(Date.UTC(2026, 11, 3)),
  magicByte: 2,
  isControlBatch: false,
  timestampType: 0,
  maxTimestamp: String(Date.UTC(2026, 11, 3)),
}

const REPEATED_NAMES = 10

/** The record's body as a record batch holds it: the bytes after its length prefix. */
const recordBody = (n: number, repeated: boolean): Buffer => {
  const headers: Record<string, Buffer[]> = {}
  for (let i = 0; i < n; i++) {
    const name = repeated ? `h${i % REPEATED_NAMES}` : `h${i}`
    const list = headers[name] ?? []
    list.push(Buffer.from(`value-${i}`))
    headers[name] = list
  }
  const single: Record<string, Buffer | Buffer[]> = {}
  for (const [name, values] of Object.entries(headers))
    single[name] = values.length === 1 ? values[0]! : values
  const encoded = encodeRecord({
    key: Buffer.from("order-000001"),
    value: Buffer.from('{"event_id":"order-000001","status":"paid"}'),
    headers: single,
  }).buffer
  const body = new Decoder(encoded).readVarIntBytes()
  if (body === null) throw new Error("the encoder wrote no record")
  return body
}

// -- the measurement ---------------------------------------------------------------------------

let sink = 0

/** Microseconds per record over one round of at least `minMs` (at least one record). */
const round = (decode: RecordDecoder, body: Buffer, minMs: number): number => {
  let runs = 0
  const started = performance.now()
  let elapsed = 0
  do {
    const record = decode(new Decoder(body), batchContext)
    sink += record.offset.length
    runs++
    elapsed = performance.now() - started
  } while (elapsed < minMs)
  return (elapsed * 1000) / runs
}

const median = (values: ReadonlyArray<number>): number =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!

const contenders = [
  { label: "patched", decode: patchedDecoder },
  { label: "original", decode: originalDecoder },
  { label: "unfolded", decode: unfoldedDecoder },
] as const

/** A record slower than this is timed once: its warm-up round is its figure. */
const SLOW_US = 5_000_000

interface Timing {
  readonly us: number
  /** Timed once (slower than SLOW_US), not the median of the rounds. */
  readonly once: boolean
}

/** One timing per contender; the rounds alternate between them, after a round of warm-up each. */
const measure = (body: Buffer, rounds: number, minMs: number): Timing[] => {
  const warm = contenders.map(({ decode }) => round(decode, body, minMs))
  const samples = contenders.map((): number[] => [])
  for (let r = 0; r < rounds; r++) {
    contenders.forEach(({ decode }, i) => {
      if (warm[i]! < SLOW_US) samples[i]!.push(round(decode, body, minMs))
    })
  }
  return contenders.map((_, i) =>
    warm[i]! < SLOW_US ? { us: median(samples[i]!), once: false } : { us: warm[i]!, once: true },
  )
}

const fmt = (t: Timing): string => {
  const us = t.us
  const text =
    us >= 100_000 ? us.toFixed(0) : us >= 100 ? us.toFixed(1) : us >= 1 ? us.toFixed(2) : us.toFixed(3)
  return t.once ? `${text}*` : text
}

const columns = [18, 7, 13, 15, 15, 9, 10, 10] as const
const row = (cells: ReadonlyArray<string>): string =>
  cells.map((c, i) => (i === 0 ? c.padEnd(columns[0]) : c.padStart(columns[i] ?? 10))).join("")

const main = (argv: ReadonlyArray<string>): number => {
  const rounds = Number(argv[0] ?? 5)
  const minMs = Number(argv[1] ?? 200)
  const largest = Number(argv[2] ?? 10_000)
  if (![rounds, minMs, largest].every((v) => Number.isInteger(v) && v > 0)) {
    process.stderr.write("usage: npm run bench -- headers [rounds] [min-ms-per-round] [largest-N]\n")
    return 2
  }
  const sizes: number[] = []
  for (let n = 10; n <= largest; n *= 10) sizes.push(n)

  console.log(
    `one record with N headers through kafkajs' record decoder (record/v0/decoder.js), node ${process.version}`,
  )
  console.log(
    `µs per record: median of ${rounds} rounds of >= ${minMs} ms each, after one round of warm-up (* timed once: over ${SLOW_US / 1e6} s a record)`,
  )
  console.log("  patched    the decoder as npm ci patches it (one pass, names as own properties)")
  console.log(
    "  original   the same decoder with kafkajs 2.2.4's reduce, which spreads the object per header",
  )
  console.log("  no fold    the same decoder leaving the decoded header array as it is: what both start from")
  console.log("  ratio      original / patched")
  console.log("  growth     time(N) / time(N/10): about 10 when linear, about 100 when quadratic\n")
  console.log(row(["names", "N", "patched µs", "original µs", "no fold µs", "ratio", "growth", "growth"]))
  console.log(row(["", "", "", "", "", "", "patched", "original"]))
  for (const repeated of [false, true]) {
    let previous: Timing[] | undefined
    for (const n of sizes) {
      const body = recordBody(n, repeated)
      const a = patchedDecoder(new Decoder(body), batchContext)
      const b = originalDecoder(new Decoder(body), batchContext)
      // The same headers either way (these names are ordinary, so the original keeps them too).
      if (!isDeepStrictEqual({ ...a.headers }, b.headers))
        throw new Error(`N = ${n}: the two decoders disagree on the headers`)
      const names = Object.keys(a.headers).length
      if (names !== (repeated ? Math.min(n, REPEATED_NAMES) : n))
        throw new Error(`N = ${n}: ${names} header names decoded`)
      const [patched, original, unfolded] = measure(body, rounds, minMs) as [Timing, Timing, Timing]
      const growth = (now: Timing, before: Timing | undefined) =>
        before === undefined ? "" : (now.us / before.us).toFixed(1)
      console.log(
        row([
          repeated ? `${REPEATED_NAMES} names repeated` : "distinct names",
          String(n),
          fmt(patched),
          fmt(original),
          fmt(unfolded),
          (original.us / patched.us).toFixed(1),
          growth(patched, previous?.[0]),
          growth(original, previous?.[1]),
        ]),
      )
      previous = [patched, original, unfolded]
    }
  }
  if (sink < 0) console.log(sink)
  return 0
}

process.exitCode = main(process.argv.slice(2))
