/**
 * What the pipeline writes to Kafka. Sink messages carry the record as JSON, keyed by the
 * record key, with the batch's correlation id and the source coordinates as headers.
 * Dead-letter messages carry the original bytes untouched, the original headers, and the
 * reasons and source coordinates as `pipeline.*` headers (like Kafka Connect's
 * `__connect.errors.*` context headers).
 */
import type { IHeaders, KafkaMessage, Message } from "kafkajs"
import type { JsonObject, Reason } from "../Domain/Record.js"

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
} as const

const sourceHeaders = (origin: BatchOrigin, offset: string): IHeaders => ({
  [header.correlationId]: origin.correlationId,
  [header.sourceTopic]: origin.topic,
  [header.sourcePartition]: String(origin.partition),
  [header.sourceOffset]: offset,
})

export const sinkMessage = (
  origin: BatchOrigin,
  key: string,
  offset: string,
  value: JsonObject,
): Message => ({
  key,
  value: JSON.stringify(value),
  headers: sourceHeaders(origin, offset),
})

/** Where in the pipeline a record was turned away. */
export type Stage = "parse" | "validation" | "task" | "mongodb_sink"

export const deadLetterMessage = (
  origin: BatchOrigin,
  original: KafkaMessage,
  stage: Stage,
  reasons: ReadonlyArray<Reason>,
  now: Date,
): Message => ({
  key: original.key,
  value: original.value,
  headers: {
    ...original.headers,
    ...sourceHeaders(origin, original.offset),
    [header.sourceTimestamp]: original.timestamp,
    [header.errorStage]: stage,
    [header.errorMessage]: reasons
      .map((r) => `${r.task}${r.field === undefined ? "" : `.${r.field}`} [${r.rule}]: ${r.message}`)
      .join("; "),
    [header.errorReasons]: JSON.stringify(reasons),
    [header.errorTime]: now.toISOString(),
  },
})
