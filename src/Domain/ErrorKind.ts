/**
 * What kind of failure an error is, decided once at the edge where it is caught (the MongoDB
 * and Kafka error modules classify driver errors; see Mongo/Errors.ts and Kafka/Errors.ts):
 *
 * - `transient`: the server or the network, not the data (unreachable, timed out, "try
 *   again", leader or primary changing). Retried with backoff for as long as it lasts: the
 *   partition stalls, visibly, and nothing is committed.
 * - `record`: something in the records sent (a field name or a size the server refuses, a
 *   throw while encoding one). Never retried as it is: the records are split until the one
 *   that causes it stands alone, and that one goes to the dead-letter topic.
 * - `unknown`: neither is known. Retried a few times (PIPELINE__RETRY_COUNT), then treated as
 *   `record`, so that an unknown error can never hold a partition for good.
 * - `fenced`: a newer producer took over this producer's transactional id (the partition now
 *   belongs to another instance, KAFKA__DELIVERY=exactly_once). Nothing to retry and no record
 *   to blame: the batch is given up uncommitted, and whoever owns the partition reads it again.
 */
export type ErrorKind = "transient" | "record" | "unknown" | "fenced"

/** An error that knows its kind; its `retryable` flag (what the DAG executor reads) follows from it. */
export interface KnowsItsKind {
  readonly kind: ErrorKind
}

/** The kind of any failure value: its own when it has one, `unknown` otherwise. */
export const kindOf = (error: unknown): ErrorKind => {
  if (typeof error === "object" && error !== null && "kind" in error) {
    const kind = error.kind
    if (kind === "transient" || kind === "record" || kind === "unknown" || kind === "fenced") return kind
  }
  return "unknown"
}

/** Worth another attempt by the task retry policy: a transient error, or one of unknown kind. */
export const isRetryableKind = (kind: ErrorKind): boolean => kind === "transient" || kind === "unknown"

/** A throw while handling a record (a stack overflow in an encoder, a bug) is that record's problem. */
export const isCodeFault = (cause: unknown): boolean =>
  cause instanceof RangeError || cause instanceof TypeError || cause instanceof SyntaxError
