/**
 * From Kafka messages to records. Bytes that are not a JSON object are not records: they are
 * set aside for the dead-letter topic at once, with the reason, and never reach the tasks.
 */
import type { KafkaMessage } from "kafkajs"
import { isJsonObject, makeRecord, type PipelineRecord, type Reason } from "../Domain/Record.js"

export interface Malformed {
  readonly message: KafkaMessage
  readonly reason: Reason
}

export interface Parsed {
  readonly records: ReadonlyArray<PipelineRecord>
  /** The source message of each record, by the record's position in `records`. */
  readonly messages: ReadonlyArray<KafkaMessage>
  readonly malformed: ReadonlyArray<Malformed>
}

const reject = (message: KafkaMessage, rule: string, text: string): Malformed => ({
  message,
  reason: { task: "parse", rule, message: text },
})

export const parseMessages = (messages: ReadonlyArray<KafkaMessage>, maxBytes: number): Parsed => {
  const records: PipelineRecord[] = []
  const sources: KafkaMessage[] = []
  const malformed: Malformed[] = []
  for (const message of messages) {
    const bytes = message.value
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
      value = JSON.parse(bytes.toString("utf8"))
    } catch (e) {
      malformed.push(reject(message, "json", `not valid JSON: ${e instanceof Error ? e.message : String(e)}`))
      continue
    }
    if (!isJsonObject(value)) {
      const kind = value === null ? "null" : Array.isArray(value) ? "an array" : `a ${typeof value}`
      malformed.push(reject(message, "object", `JSON value is ${kind}, expected an object`))
      continue
    }
    records.push(makeRecord(message.offset, value))
    sources.push(message)
  }
  return { records, messages: sources, malformed }
}
