/**
 * What can go wrong on a batch's write path, as typed errors: a sink that throws (the records'
 * problem), an attempt past the sink's timeout (transient), a sink's own error (StageError), and
 * the batch given up uncommitted (Kafka/KafkaSource.ts BatchAbandoned: its producer was fenced).
 * Their kinds (Domain/ErrorKind.ts) decide what the write policies of Writes.ts do with them.
 */
import { Data, Duration } from "effect"
import type { ErrorKind } from "../Domain/ErrorKind.js"
import type { BatchAbandoned } from "../Kafka/KafkaSource.js"
import type { StageError } from "./PipelineDag.js"

/** A throw inside a sink: the records it was given caused it (an encoder's stack overflow, a bug). */
export class SinkDefect extends Data.TaggedError("SinkDefect")<{
  readonly sink: string
  readonly defect: unknown
}> {
  readonly kind: ErrorKind = "record"
  readonly retryable = false
  override get message() {
    const d = this.defect
    return `the ${this.sink} sink threw: ${d instanceof Error ? `${d.name}: ${d.message}` : String(d)}`
  }
}

/** An attempt of a sink's write that outlasted the sink's `timeoutSeconds`. */
export class SinkTimeout extends Data.TaggedError("SinkTimeout")<{
  readonly sink: string
  readonly timeout: Duration.Duration
}> {
  readonly kind: ErrorKind = "transient"
  readonly retryable = true
  override get message() {
    return `the ${this.sink} sink did not answer within ${Duration.format(this.timeout)}`
  }
}

/** Every failure a write may end with. */
export type Failure = StageError | SinkDefect | SinkTimeout | BatchAbandoned

export const messageOf = (error: unknown): string =>
  typeof error === "object" && error !== null && "message" in error && typeof error.message === "string"
    ? error.message
    : String(error)
