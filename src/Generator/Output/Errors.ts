/** Failures of the generator's outputs, tagged so the CLI can tell "stop" from "fail". */
import { Data } from "effect"

export class FileWriteError extends Data.TaggedError("FileWriteError")<{
  readonly path: string
  readonly cause: unknown
}> {}

/** The reader went away (e.g. `generate | head`): a reason to stop, not a failure. */
export class OutputClosed extends Data.TaggedError("OutputClosed")<{ readonly cause: unknown }> {}

export class KafkaConnectError extends Data.TaggedError("KafkaConnectError")<{
  readonly brokers: ReadonlyArray<string>
  readonly cause: unknown
}> {}

export class KafkaProduceError extends Data.TaggedError("KafkaProduceError")<{
  readonly topic: string
  readonly cause: unknown
}> {}

export type OutputError = FileWriteError | OutputClosed | KafkaConnectError | KafkaProduceError
