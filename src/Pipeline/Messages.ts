/**
 * What the pipeline writes to Kafka. Sink messages carry the record as JSON, keyed by the
 * record key, with the source message's headers and the batch's correlation id and the source
 * coordinates as headers.
 * Dead-letter messages carry the original bytes untouched, the original headers, and the
 * reasons and source coordinates as `pipeline.*` headers (like Kafka Connect's
 * `__connect.errors.*` context headers).
 */
import type { IHeaders, KafkaMessage, Message } from "kafkajs"
import type { SinkType } from "../Config/SinkKinds.js"
import type { JsonObject, Reason, SourceHeaders } from "../Domain/Record.js"
import { encodedSize, encodedSizeBound } from "../Kafka/MessageSize.js"

export interface BatchOrigin {
  readonly correlationId: string
  readonly topic: string
  readonly partition: number
}

export const header = {
  correlationId: "pipeline.correlation_id",
  sourceTopic: "pipeline.source.topic",
  sourcePartition: "pipeline.source.partition",
  sourceOffset: "pipeline.source.offset",
  sourceTimestamp: "pipeline.source.timestamp",
  errorStage: "pipeline.error.stage",
  errorMessage: "pipeline.error.message",
  errorReasons: "pipeline.error.reasons",
  errorTime: "pipeline.error.time",
  truncatedFrom: "pipeline.error.truncated_from_bytes",
} as const

// Written out rather than as computed keys of `header`: the literal's shape is known ahead, one
// allocation per message and no property added one by one. A test holds the names to `header`.
export const sourceHeaders = (origin: BatchOrigin, offset: string): IHeaders => ({
  "pipeline.correlation_id": origin.correlationId,
  "pipeline.source.topic": origin.topic,
  "pipeline.source.partition": String(origin.partition),
  "pipeline.source.offset": offset,
})

/**
 * The record as a sink message: its source message's headers as they came (any name, bytes
 * untouched), then the pipeline's own, which replace any of the same name.
 */
export const sinkMessage = (
  origin: BatchOrigin,
  key: string,
  offset: string,
  value: JsonObject,
  headers?: SourceHeaders,
): Message => ({
  key,
  value: JSON.stringify(value),
  headers:
    headers === undefined
      ? sourceHeaders(origin, offset)
      : { ...(headers as IHeaders), ...sourceHeaders(origin, offset) },
})

/**
 * A tombstone passed on to the sink topic: its key, a null value, and the headers a record's
 * message would carry, so that a compacted sink topic drops the key as the source did.
 */
export const tombstoneMessage = (
  origin: BatchOrigin,
  key: string,
  offset: string,
  headers?: SourceHeaders,
): Message => ({
  key,
  value: null,
  headers:
    headers === undefined
      ? sourceHeaders(origin, offset)
      : { ...(headers as IHeaders), ...sourceHeaders(origin, offset) },
})

/** Where in the pipeline a record was turned away. */
export type Stage = "parse" | "validation" | "task" | SinkType

// The reason headers of one dead letter are cut at this many characters each.
const maxReasonChars = 16_384

const cut = (text: string, max: number): string => (text.length > max ? `${text.slice(0, max - 1)}…` : text)

/**
 * The dead letter of `original`: its key, value and headers untouched, plus the reasons and the
 * source coordinates. When that is more than the dead-letter topic takes (`maxBytes`), the
 * value is cut to fit and `pipeline.error.truncated_from_bytes` says how long it was; the
 * coordinates always let the original be read again from the source topic.
 */
export const deadLetterMessage = (
  origin: BatchOrigin,
  original: KafkaMessage,
  stage: Stage,
  reasons: ReadonlyArray<Reason>,
  now: Date,
  maxBytes: number = Number.POSITIVE_INFINITY,
): Message => {
  const message: Message = {
    key: original.key,
    value: original.value,
    headers: {
      ...original.headers,
      ...sourceHeaders(origin, original.offset),
      [header.sourceTimestamp]: original.timestamp,
      [header.errorStage]: stage,
      [header.errorMessage]: cut(
        reasons
          .map((r) => `${r.task}${r.field === undefined ? "" : `.${r.field}`} [${r.rule}]: ${r.message}`)
          .join("; "),
        maxReasonChars,
      ),
      [header.errorReasons]: cut(JSON.stringify(reasons), maxReasonChars),
      [header.errorTime]: now.toISOString(),
    },
  }
  // Most dead letters are far below the limit: their size is then not counted byte by byte.
  if (encodedSizeBound(message) <= maxBytes) return message
  const excess = encodedSize(message) - maxBytes
  if (excess <= 0) return message
  const value = original.value ?? Buffer.alloc(0)
  const headers = { ...message.headers, [header.truncatedFrom]: String(value.length) }
  const room = Math.max(0, value.length - excess - 64)
  // Original headers that alone exceed the topic's limit are left out too; the source keeps them.
  const fits = { ...message, value: value.subarray(0, room), headers }
  if (encodedSize(fits) <= maxBytes) return fits
  const own: Record<string, string> = {}
  for (const [name, v] of Object.entries(headers)) if (name.startsWith("pipeline.")) own[name] = String(v)
  return { key: original.key, value: Buffer.alloc(0), headers: own }
}
