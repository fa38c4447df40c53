/**
 * Errors at the kafkajs edge. kafkajs reports failures through rejected promises whose
 * errors carry a `retriable` flag; that flag becomes our typed `retryable`, so retry
 * decisions are made in Effect, not by matching message text.
 */
import { Data } from "effect"

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
  readonly retryable: boolean
  readonly cause: unknown
}> {
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

export class KafkaCommitError extends Data.TaggedError("KafkaCommitError")<{
  readonly topic: string
  readonly partition: number
  readonly offset: string
  readonly cause: unknown
}> {
  readonly retryable = false
  override get message() {
    return `committing offset ${this.offset} of ${this.topic}[${this.partition}] failed: ${describeCause(this.cause)}`
  }
}

/** kafkajs errors say whether a retry can help; anything else is assumed transient. */
export const isRetriableKafkaError = (cause: unknown): boolean =>
  !(typeof cause === "object" && cause !== null && "retriable" in cause && cause.retriable === false)

export const describeCause = (cause: unknown): string => {
  if (cause instanceof Error) {
    const nested = "cause" in cause && cause.cause instanceof Error ? ` (${cause.cause.message})` : ""
    return `${cause.name}: ${cause.message}${nested}`
  }
  return String(cause)
}
