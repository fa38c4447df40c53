/**
 * From Kafka messages to records. Bytes that are not a JSON object are not records: they are
 * set aside for the dead-letter topic at once, with the reason, and never reach the tasks.
 *
 * With PIPELINE__SOURCE_FORMAT=debezium each value is a change event (Debezium.ts): its `after`
 * row becomes the record, and a delete joins the tombstones to apply.
 *
 * A tombstone (a message whose value is null, as compacted topics and change-data-capture
 * streams use to delete a key) is handled by MONGODB__ON_TOMBSTONE: `dead_letter` sets it aside
 * as malformed (rule `empty`), `ignore` counts it, `delete` keeps it, keyed by its message key,
 * for the sinks to delete that key. A tombstone without a usable key is malformed.
 *
 * Integers beyond 2^53 (64-bit ids) cannot be held exactly by a JavaScript number: they are
 * kept as their decimal text, so two different ids never become the same key or value.
 */
import type { KafkaMessage } from "kafkajs"
import {
  isJsonObject,
  type JsonObject,
  makeRecord,
  type PipelineRecord,
  type Reason,
  type SourceHeaders,
  type SourcePosition,
} from "../Domain/Record.js"
import { changeEvent, deleteKey } from "./Debezium.js"

export interface Malformed {
  readonly message: KafkaMessage
  readonly reason: Reason
}

/** What becomes of a message whose value is null (MONGODB__ON_TOMBSTONE). */
export type OnTombstone = "delete" | "ignore" | "dead_letter"

/** A tombstone to apply: the key whose document is deleted, and where it was read. */
export interface Tombstone {
  readonly message: KafkaMessage
  /** The message key as text: the record key of the document it deletes. */
  readonly key: string
  /** Where the tombstone was first read, when not in its batch (a dead letter replayed). */
  readonly source?: SourcePosition
}

export interface Parsed {
  readonly records: ReadonlyArray<PipelineRecord>
  /** The source message of each record, by the record's position in `records`. */
  readonly messages: ReadonlyArray<KafkaMessage>
  readonly malformed: ReadonlyArray<Malformed>
  /** Deletes for the sinks to apply (tombstones with MONGODB__ON_TOMBSTONE=delete, Debezium deletes), in offset order. */
  readonly tombstones: ReadonlyArray<Tombstone>
  /** Tombstones counted and left alone (MONGODB__ON_TOMBSTONE=ignore). */
  readonly ignored: ReadonlyArray<KafkaMessage>
}

/** How the source's values are written (PIPELINE__SOURCE_FORMAT): records, or Debezium change events. */
export type SourceFormat = "plain" | "debezium"

export interface ParseOptions {
  readonly onTombstone: OnTombstone
  /** Longest key a tombstone or a delete may carry, in UTF-8 bytes (PIPELINE__MAX_KEY_BYTES). */
  readonly maxKeyBytes: number
  readonly format: SourceFormat
}

const plainDeadLetteringTombstones: ParseOptions = {
  onTombstone: "dead_letter",
  maxKeyBytes: 1024,
  format: "plain",
}

const reject = (message: KafkaMessage, rule: string, text: string): Malformed => ({
  message,
  reason: { task: "parse", rule, message: text },
})

/**
 * The key a tombstone deletes, or why it has none. A Debezium tombstone's message key is the
 * row's key fields as JSON: the document key is made from them as for a delete event.
 */
const tombstoneKey = (
  message: KafkaMessage,
  maxKeyBytes: number,
  format: SourceFormat,
): string | Malformed => {
  if (format === "debezium") {
    const key = deleteKey(message.key, maxKeyBytes)
    return typeof key === "string"
      ? key
      : reject(
          message,
          "tombstone_key",
          `a tombstone whose message key ${key.problem}: no document to delete`,
        )
  }
  const key = message.key === null || message.key === undefined ? "" : message.key.toString("utf8")
  if (key === "")
    return reject(message, "tombstone_key", "a tombstone (null value) without a key: no document to delete")
  if (Buffer.byteLength(key, "utf8") > maxKeyBytes)
    return reject(
      message,
      "tombstone_key",
      `the tombstone's key is longer than ${maxKeyBytes} bytes (PIPELINE__MAX_KEY_BYTES)`,
    )
  return key
}

// A number JavaScript may not hold exactly has 16 digits or more, or an exponent. Digits in a
// string match too (ids such as "evt-00000001000000000000"): the text only says where to look.
const mayHoldLargeInteger = /\d{16}|\d[eE]\+?\d/

type Reviver = (key: string, value: unknown, context: { readonly source?: string }) => unknown

const isUnsafeInteger = (value: number): boolean => Number.isInteger(value) && !Number.isSafeInteger(value)

const keepLargeIntegers: Reviver = (_key, value, context) =>
  typeof value === "number" && isUnsafeInteger(value) && context.source !== undefined ? context.source : value

/** Whether a parsed value holds an integer a double cannot hold exactly (what the reviver would replace). */
const holdsUnsafeInteger = (value: unknown): boolean => {
  if (typeof value === "number") return isUnsafeInteger(value)
  if (typeof value !== "object" || value === null) return false
  if (Array.isArray(value)) {
    for (const item of value) if (holdsUnsafeInteger(item)) return true
    return false
  }
  for (const key in value) if (holdsUnsafeInteger((value as Record<string, unknown>)[key])) return true
  return false
}

/**
 * JSON.parse, with integers beyond 2^53 kept as their text. A reviver that reads each value's
 * source costs several times the parse, so it runs only when the value holds such an integer:
 * the plain parse is the answer whenever it holds none, as the reviver changes nothing else.
 */
export const parseExact = (text: string): unknown => {
  const value: unknown = JSON.parse(text)
  return mayHoldLargeInteger.test(text) && holdsUnsafeInteger(value)
    ? JSON.parse(text, keepLargeIntegers as (this: unknown, key: string, value: unknown) => unknown)
    : value
}

/** The message's headers, when it has any (kafkajs gives every message an object). */
const headersOf = (message: KafkaMessage): SourceHeaders | undefined => {
  const headers = message.headers
  if (headers === undefined) return undefined
  for (const _ in headers) return headers
  return undefined
}

/**
 * `sourceOf` says where a message was first read when that is not where it came from (a dead
 * letter replayed: Replay/); its records carry that as their `source`.
 */
export const parseMessages = (
  messages: ReadonlyArray<KafkaMessage>,
  maxBytes: number,
  sourceOf?: (message: KafkaMessage) => SourcePosition | undefined,
  handling: ParseOptions = plainDeadLetteringTombstones,
): Parsed => {
  const records: PipelineRecord[] = []
  const sources: KafkaMessage[] = []
  const malformed: Malformed[] = []
  const tombstones: Tombstone[] = []
  const ignored: KafkaMessage[] = []
  for (const message of messages) {
    const bytes = message.value
    if (bytes === null && handling.onTombstone === "ignore") {
      ignored.push(message)
      continue
    }
    if (bytes === null && handling.onTombstone === "delete") {
      const key = tombstoneKey(message, handling.maxKeyBytes, handling.format)
      if (typeof key !== "string") {
        malformed.push(key)
        continue
      }
      const source = sourceOf?.(message)
      tombstones.push(source === undefined ? { message, key } : { message, key, source })
      continue
    }
    if (bytes === null || bytes.length === 0) {
      malformed.push(reject(message, "empty", "message has no value (empty or tombstone)"))
      continue
    }
    if (bytes.length > maxBytes) {
      malformed.push(
        reject(
          message,
          "oversized",
          `message is ${bytes.length} bytes, over the limit of ${maxBytes} (KAFKA__MAX_MESSAGE_BYTES)`,
        ),
      )
      continue
    }
    let value: unknown
    try {
      value = parseExact(bytes.toString("utf8"))
    } catch (e) {
      malformed.push(reject(message, "json", `not valid JSON: ${e instanceof Error ? e.message : String(e)}`))
      continue
    }
    if (!isJsonObject(value)) {
      const kind = value === null ? "null" : Array.isArray(value) ? "an array" : `a ${typeof value}`
      malformed.push(reject(message, "object", `JSON value is ${kind}, expected an object`))
      continue
    }
    let row: JsonObject = value
    if (handling.format === "debezium") {
      const event = changeEvent(value, message.key, handling.maxKeyBytes)
      if (event._tag === "Invalid") {
        malformed.push(reject(message, event.rule, event.message))
        continue
      }
      if (event._tag === "Delete") {
        const source = sourceOf?.(message)
        tombstones.push(
          source === undefined ? { message, key: event.key } : { message, key: event.key, source },
        )
        continue
      }
      row = event.row
    }
    const record = makeRecord(message.offset, row, bytes.length, headersOf(message))
    const source = sourceOf?.(message)
    records.push(source === undefined ? record : { ...record, source })
    sources.push(message)
  }
  return { records, messages: sources, malformed, tombstones, ignored }
}
