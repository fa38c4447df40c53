/**
 * Errors at the MongoDB driver's edge, and their triage (see Domain/ErrorKind.ts): transient
 * failures (network, timeouts, elections, "try again") are retried for as long as they last;
 * data errors (a document the server will never accept) send that record to the dead-letter
 * topic; anything else is of unknown kind.
 */
import { Data } from "effect"
import { MongoBulkWriteError, MongoError, MongoNetworkError, MongoServerSelectionError } from "mongodb"
import { type ErrorKind, isCodeFault, isRetryableKind } from "../Domain/ErrorKind.js"

export class MongoConnectionError extends Data.TaggedError("MongoConnectionError")<{
  readonly cause: unknown
}> {
  readonly kind: ErrorKind = "transient"
  readonly retryable = true
  override get message() {
    return `cannot reach MongoDB: ${describe(this.cause)}`
  }
}

export class MongoWriteError extends Data.TaggedError("MongoWriteError")<{
  readonly documents: number
  readonly kind: ErrorKind
  readonly cause: unknown
}> {
  get retryable(): boolean {
    return isRetryableKind(this.kind)
  }
  override get message() {
    return `writing ${this.documents} document(s) to MongoDB failed: ${describe(this.cause)}`
  }
}

/** Server codes of documents that will never be accepted, however often they are retried. */
const dataErrorCodes = new Set([
  2, // BadValue
  9, // FailedToParse
  14, // TypeMismatch
  15, // Overflow (a document nested deeper than the server allows)
  17, // ProtocolError (FerretDB: a document it cannot encode)
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

/** Server codes that say "not now": the same command can succeed later. */
const transientCodes = new Set([
  6, // HostUnreachable
  7, // HostNotFound
  50, // MaxTimeMSExpired
  64, // WriteConcernFailed
  89, // NetworkTimeout
  91, // ShutdownInProgress
  112, // WriteConflict
  133, // FailedToSatisfyReadPreference
  134, // ReadConcernMajorityNotAvailableYet
  189, // PrimarySteppedDown
  262, // ExceededTimeLimit
  462, // IngressRequestRateLimitExceeded
  9001, // SocketException
  10107, // NotWritablePrimary
  11600, // InterruptedAtShutdown
  11602, // InterruptedDueToReplStateChange
  13435, // NotPrimaryNoSecondaryOk
  13436, // NotPrimaryOrSecondary
  16500, // request rate too large (Cosmos DB's MongoDB API)
])

/** Driver errors (by name) about the client's own connections and clocks, never about the data. */
const transientClasses = new Set([
  "MongoOperationTimeoutError",
  "MongoWaitQueueTimeoutError",
  "MongoPoolClearedError",
  "MongoServerClosedError",
  "MongoTopologyClosedError",
  "MongoClientClosedError",
])

/** A per-document write error that no retry fixes (E11000 is decided by the sink: see MongoSink). */
export const isDataWriteError = (code: number | undefined): boolean =>
  code !== undefined && dataErrorCodes.has(code)

/** The kind of a failed command, by the driver's error class, labels and the server's code. */
export const kindOfMongoError = (cause: unknown, depth = 0): ErrorKind => {
  // A bulk write that failed as a whole (no per-document errors) carries what stopped it
  // (a server selection error while the server is down): that decides.
  if (cause instanceof MongoBulkWriteError && depth < 3) {
    const writeErrors = cause.writeErrors
    const none = writeErrors === undefined || (Array.isArray(writeErrors) && writeErrors.length === 0)
    const inner: unknown = cause.errorResponse instanceof Error ? cause.errorResponse : cause.cause
    if (none && inner instanceof Error && inner !== cause) {
      const kind = kindOfMongoError(inner, depth + 1)
      if (kind !== "unknown") return kind
    }
    if (none && cause.writeConcernError !== undefined) return "transient"
  }
  if (cause instanceof MongoNetworkError || cause instanceof MongoServerSelectionError) return "transient"
  // The BSON encoder refuses a document (a NUL in a field name, a value it cannot encode).
  if (cause instanceof Error && cause.name === "BSONError") return "record"
  if (isCodeFault(cause)) return "record"
  if (cause instanceof MongoError) {
    if (transientClasses.has(cause.name)) return "transient"
    if (
      cause.hasErrorLabel("RetryableWriteError") ||
      cause.hasErrorLabel("TransientTransactionError") ||
      cause.hasErrorLabel("SystemOverloadedError")
    )
      return "transient"
    const code = typeof cause.code === "number" ? cause.code : undefined
    if (code !== undefined && transientCodes.has(code)) return "transient"
    if (code !== undefined && dataErrorCodes.has(code)) return "record"
  }
  return "unknown"
}

export const describe = (cause: unknown): string =>
  cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause)
