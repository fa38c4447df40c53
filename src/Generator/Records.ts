/**
 * The generator proper: record `index` of a stream is a pure function of (options, index).
 * Same seed, same stream, byte for byte; any slice of it can be rebuilt on its own, which is
 * what lets a test ask "what was record 8123 supposed to be?".
 */
import type { JsonObject } from "../Domain/Record.js"
import { applyDefect, type Defect, malformedJson, oversizedJson } from "./Defects.js"
import { randomAt, unitAt } from "./Random.js"
import { validRecord } from "./Valid.js"

export type Pattern = "valid" | "invalid" | "mixed"

export interface RecordOptions {
  readonly seed: number
  readonly pattern: Pattern
  /** Share of invalid records in a mixed stream (valid: 0, invalid: everything else). */
  readonly invalidRatio: number
  /** Each ratio below is a share of all emitted messages. */
  readonly duplicateRatio: number
  readonly malformedRatio: number
  readonly oversizedRatio: number
  /** Exact size of each oversized message. */
  readonly oversizedBytes: number
  /** Epoch ms that `created_at` values are spread before, so output does not depend on the clock. */
  readonly baseTime: number
}

export const ONE_MIB = 1_048_576

export const defaultRecordOptions: RecordOptions = {
  seed: 1,
  pattern: "mixed",
  invalidRatio: 0.1,
  duplicateRatio: 0.05,
  malformedRatio: 0,
  oversizedRatio: 0,
  oversizedBytes: ONE_MIB + 1,
  baseTime: Date.UTC(2026, 10, 27),
}

export type Kind = "valid" | "invalid" | "duplicate" | "malformed" | "oversized"

/** The messages of a Debezium change stream (Debezium.ts). */
export type ChangeKind = "create" | "update" | "delete" | "tombstone"

export interface GeneratedRecord {
  readonly index: number
  readonly kind: Kind | ChangeKind
  /** The record key (its event_id); null when the record lost its event_id to a defect. */
  readonly key: string | null
  /** A JSON object for records; raw bytes for malformed and oversized messages. */
  readonly value: JsonObject | Uint8Array
  readonly defect?: Defect
  /** The dotted path of the damaged field, for invalid records. */
  readonly field?: string
  /** For duplicates: the event_id (and index) of the earlier valid record they repeat. */
  readonly isDuplicateOf?: string
  readonly originalIndex?: number
  /** A tombstone: its value on the wire is null (`value` holds no bytes). */
  readonly tombstone?: true
}

// Independent random streams per record (see Random.hash).
const KIND = 0
const CONTENT = 1
const DEFECT = 2
const DUPLICATE = 3

/** Duplicates land within this many records of their original half of the time (one batch). */
const NEAR = 50
/** How far back (then forward) to look for a valid record to duplicate before giving up. */
const MAX_WALK = 10_000

/** Upper bounds of each kind's slice of [0, 1), in drawing order; the rest is valid. */
interface Shares {
  readonly duplicate: number
  readonly malformed: number
  readonly oversized: number
  readonly invalid: number
}

const sharesOf = (o: RecordOptions): Shares => {
  const invalid = o.pattern === "valid" ? 0 : o.pattern === "invalid" ? 1 : o.invalidRatio
  // An all-invalid stream has nothing valid to repeat.
  const duplicate = invalid >= 1 ? 0 : o.duplicateRatio
  const malformed = duplicate + o.malformedRatio
  const oversized = malformed + o.oversizedRatio
  return { duplicate, malformed, oversized, invalid: o.pattern === "invalid" ? 1 : oversized + invalid }
}

/** The kind drawn for `index`, before a duplicate is matched to an original. */
const drawnKind = (o: RecordOptions, s: Shares, index: number): Kind => {
  const u = unitAt(o.seed, index, KIND)
  if (u < s.duplicate) return "duplicate"
  if (u < s.malformed) return "malformed"
  if (u < s.oversized) return "oversized"
  if (u < s.invalid) return "invalid"
  return "valid"
}

export const eventIdOf = (seed: number, index: number): string =>
  `evt-${seed.toString(16).padStart(8, "0")}${index.toString(16).padStart(12, "0")}`

const originOf = (o: RecordOptions, s: Shares, index: number): number | undefined => {
  if (index === 0) return undefined
  const rng = randomAt(o.seed, index, DUPLICATE)
  const start = rng.chance(0.5) ? index - rng.int(1, Math.min(index, NEAR)) : rng.int(0, index - 1)
  for (let j = start; j >= 0 && start - j < MAX_WALK; j--) if (drawnKind(o, s, j) === "valid") return j
  for (let j = start + 1; j < index && j - start < MAX_WALK; j++) if (drawnKind(o, s, j) === "valid") return j
  return undefined
}

const contentAt = (o: RecordOptions, index: number) =>
  validRecord(randomAt(o.seed, index, CONTENT), eventIdOf(o.seed, index), o.baseTime)

const bytes = (s: string): Buffer => Buffer.from(s, "utf8")

const build = (o: RecordOptions, s: Shares, index: number): GeneratedRecord => {
  const kind = drawnKind(o, s, index)
  const key = eventIdOf(o.seed, index)
  switch (kind) {
    case "valid":
      return { index, kind, key, value: contentAt(o, index) }
    case "duplicate": {
      const origin = originOf(o, s, index)
      if (origin === undefined) return { index, kind: "valid", key, value: contentAt(o, index) }
      const id = eventIdOf(o.seed, origin)
      return { index, kind, key: id, value: contentAt(o, origin), isDuplicateOf: id, originalIndex: origin }
    }
    case "invalid": {
      const value = contentAt(o, index)
      const { defect, field } = applyDefect(randomAt(o.seed, index, DEFECT), value)
      return { index, kind, key: typeof value.event_id === "string" ? key : null, value, defect, field }
    }
    case "malformed": {
      const value = bytes(malformedJson(randomAt(o.seed, index, DEFECT), contentAt(o, index)))
      return { index, kind, key, value, defect: "malformed_json" }
    }
    case "oversized":
      return {
        index,
        kind,
        key,
        value: bytes(oversizedJson(contentAt(o, index), o.oversizedBytes)),
        defect: "oversized",
      }
  }
}

/** Record `index` of the stream described by `options`. */
export const recordAt = (options: RecordOptions, index: number): GeneratedRecord =>
  build(options, sharesOf(options), index)

/** Records `start`, `start + 1`, ... (`count` of them, or without end). */
export function* generate(options: RecordOptions, start = 0, count = Infinity): Generator<GeneratedRecord> {
  const shares = sharesOf(options)
  for (let i = start; i < start + count; i++) yield build(options, shares, i)
}

/** The message value as it goes on the wire: JSON for records, the bytes as they are otherwise (none for a tombstone). */
export const encode = (record: GeneratedRecord): Buffer =>
  record.value instanceof Uint8Array
    ? Buffer.from(record.value.buffer, record.value.byteOffset, record.value.byteLength)
    : bytes(JSON.stringify(record.value))

/** The value for a Kafka message: null for a tombstone, what `encode` gives otherwise. */
export const encodeValue = (record: GeneratedRecord): Buffer | null =>
  record.tombstone === true ? null : encode(record)
