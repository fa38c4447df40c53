/**
 * Errors at the MongoDB driver's edge, and the classification of write errors: transient
 * failures (network, elections, timeouts) are retried; data errors (a document the server
 * will never accept) send that record to the dead-letter topic.
 */
import { Data } from "effect"
import { MongoError, MongoNetworkError, MongoServerSelectionError } from "mongodb"

export class MongoConnectionError extends Data.TaggedError("MongoConnectionError")<{
  readonly cause: unknown
}> {
  readonly retryable = true
  override get message() {
    return `cannot reach MongoDB: ${describe(this.cause)}`
  }
}

export class MongoWriteError extends Data.TaggedError("MongoWriteError")<{
  readonly documents: number
  readonly retryable: boolean
  readonly cause: unknown
}> {
  override get message() {
    return `writing ${this.documents} document(s) to MongoDB failed: ${describe(this.cause)}`
  }
}

/** Server codes of documents that will never be accepted, however often they are retried. */
const dataErrorCodes = new Set([
  2, // BadValue
  9, // FailedToParse
  14, // TypeMismatch
  52, // DollarPrefixedFieldName
  55, // DottedFieldName (older servers)
  56, // EmptyFieldName
  57, // DottedFieldName
  66, // ImmutableField
  121, // DocumentValidationFailure
  10334, // BSONObjectTooLarge
  17280, // KeyTooLong
  17419, // document too large after update
])

/** A per-document write error that no retry fixes (E11000 is decided by the sink: see MongoSink). */
export const isDataWriteError = (code: number | undefined): boolean =>
  code !== undefined && dataErrorCodes.has(code)

/** A whole-command failure: is it worth retrying? */
export const isTransientCommandError = (cause: unknown): boolean => {
  if (cause instanceof MongoNetworkError || cause instanceof MongoServerSelectionError) return true
  if (cause instanceof MongoError) {
    if (cause.hasErrorLabel("RetryableWriteError") || cause.hasErrorLabel("TransientTransactionError"))
      return true
    const code = typeof cause.code === "number" ? cause.code : undefined
    return code === undefined || !dataErrorCodes.has(code)
  }
  return true
}

export const describe = (cause: unknown): string =>
  cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause)
