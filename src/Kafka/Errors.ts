/**
 * Errors at the kafkajs edge, and their triage (see Domain/ErrorKind.ts). kafkajs reports
 * failures through rejected promises whose errors carry a protocol error type and a
 * `retriable` flag; they decide the kind, so retry decisions are made in Effect, not by
 * matching message text.
 */
import { Data } from "effect"
import { type ErrorKind, isCodeFault, isRetryableKind } from "../Domain/ErrorKind.js"

export class KafkaConnectionError extends Data.TaggedError("KafkaConnectionError")<{
  readonly client: "producer" | "consumer" | "admin"
  readonly brokers: string
  readonly cause: unknown
}> {
  readonly retryable = true
  override get message() {
    return `cannot connect the Kafka ${this.client} to ${this.brokers}: ${describeCause(this.cause)}`
  }
}

export class KafkaProduceError extends Data.TaggedError("KafkaProduceError")<{
  readonly topic: string
  readonly messages: number
  readonly kind: ErrorKind
  readonly cause: unknown
}> {
  get retryable(): boolean {
    return isRetryableKind(this.kind)
  }
  override get message() {
    return `producing ${this.messages} message(s) to "${this.topic}" failed: ${describeCause(this.cause)}`
  }
}

export class KafkaTopicError extends Data.TaggedError("KafkaTopicError")<{
  readonly topics: ReadonlyArray<string>
  readonly cause: unknown
}> {
  readonly retryable = false
  override get message() {
    return `the broker refused to create or describe topic(s) ${this.topics.join(", ")}: ${describeCause(this.cause)}`
  }
}

/** Protocol errors that the records sent cause: the same records fail the same way every time. */
const recordErrorTypes = new Set(["MESSAGE_TOO_LARGE", "RECORD_LIST_TOO_LARGE", "INVALID_RECORD"])

/** The broker's word that a newer producer holds this transactional id. */
const fencedErrorTypes = new Set(["INVALID_PRODUCER_EPOCH", "PRODUCER_FENCED"])

/** The broker's word that it no longer knows an idempotent producer's sequence for a partition. */
const sequenceLostTypes = new Set(["OUT_OF_ORDER_SEQUENCE_NUMBER", "UNKNOWN_PRODUCER_ID"])

/** kafkajs errors about connections, brokers and time, never about the data. */
const transientClasses = new Set([
  "KafkaJSConnectionError",
  "KafkaJSConnectionClosedError",
  "KafkaJSRequestTimeoutError",
  "KafkaJSNoBrokerAvailableError",
  "KafkaJSBrokerNotFound",
  "KafkaJSMetadataNotLoaded",
  "KafkaJSTopicMetadataNotLoaded",
  "KafkaJSStaleTopicMetadataAssignment",
  "KafkaJSLockTimeout",
  "KafkaJSTimeout",
])

const field = (cause: object, name: string): unknown => (name in cause ? Reflect.get(cause, name) : undefined)

/**
 * The kind of a kafkajs failure. kafkajs retries retriable errors itself and then throws
 * KafkaJSNumberOfRetriesExceeded: the kind is that of the error it gave up on.
 */
export const kindOfKafkaError = (cause: unknown, depth = 0): ErrorKind => {
  if (isCodeFault(cause)) return "record"
  if (typeof cause !== "object" || cause === null || depth > 5) return "unknown"
  const name = field(cause, "name")
  const type = field(cause, "type")
  if (typeof type === "string" && recordErrorTypes.has(type)) return "record"
  if (typeof type === "string" && fencedErrorTypes.has(type)) return "fenced"
  if (name === "KafkaJSNumberOfRetriesExceeded" || name === "KafkaJSNonRetriableError") {
    const inner = field(cause, "cause") ?? field(cause, "originalError")
    if (inner !== undefined) {
      const kind = kindOfKafkaError(inner, depth + 1)
      // The retries it gave up on were for an error it knew to be retriable.
      return kind === "unknown" && name === "KafkaJSNumberOfRetriesExceeded" ? "transient" : kind
    }
  }
  if (name === "KafkaJSAggregateError") {
    const errors = field(cause, "errors")
    if (Array.isArray(errors) && errors.length > 0) {
      const kinds = errors.map((e: unknown) => kindOfKafkaError(e, depth + 1))
      return kinds.includes("fenced")
        ? "fenced"
        : kinds.includes("record")
          ? "record"
          : kinds.every((k) => k === "transient")
            ? "transient"
            : "unknown"
    }
  }
  if (typeof name === "string" && transientClasses.has(name)) return "transient"
  // kafkajs' own word that another attempt can succeed (a retriable protocol error, a lost connection).
  if (typeof name === "string" && name.startsWith("KafkaJS") && field(cause, "retriable") === true)
    return "transient"
  return "unknown"
}

/** True when the error, or one it wraps, says the broker lost the producer's sequence numbers. */
export const producerStateLost = (cause: unknown, depth = 0): boolean => {
  if (typeof cause !== "object" || cause === null || depth > 5) return false
  const type = field(cause, "type")
  if (typeof type === "string" && sequenceLostTypes.has(type)) return true
  const inner = field(cause, "cause") ?? field(cause, "originalError")
  if (inner !== undefined && producerStateLost(inner, depth + 1)) return true
  const errors = field(cause, "errors")
  return Array.isArray(errors) && errors.some((e: unknown) => producerStateLost(e, depth + 1))
}

export const describeCause = (cause: unknown): string => {
  if (cause instanceof Error) {
    const nested = "cause" in cause && cause.cause instanceof Error ? ` (${cause.cause.message})` : ""
    return `${cause.name}: ${cause.message}${nested}`
  }
  return String(cause)
}
