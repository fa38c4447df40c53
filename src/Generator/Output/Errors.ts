/** Failures of the generator's outputs, tagged so the CLI can tell "stop" from "fail". */
import { Data } from "effect"
import type { KafkaConnectionError, KafkaProduceError } from "../../Kafka/Errors.js"

export class FileWriteError extends Data.TaggedError("FileWriteError")<{
  readonly path: string
  readonly cause: unknown
}> {}

/** The reader went away (e.g. `generate | head`): a reason to stop, not a failure. */
export class OutputClosed extends Data.TaggedError("OutputClosed")<{ readonly cause: unknown }> {}

/** The Kafka output's failures are the service's own Kafka errors. */
export type OutputError = FileWriteError | OutputClosed | KafkaConnectionError | KafkaProduceError
