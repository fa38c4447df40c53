/**
 * What kafkajs' own log lines are, so that each gets the level it deserves. kafkajs logs the
 * broker's ordinary "not yet" answers (a coordinator still loading, a leader being elected),
 * which it retries by itself, at ERROR, as it does a refused login. Here a line is classified by
 * the protocol error it carries (its type and retriable flag from kafkajs' own table of Kafka's
 * error codes), or, for lines that carry none (connections, the consumer's restarts), by what
 * kafkajs says it does next:
 *
 * | kind | what | level |
 * |---|---|---|
 * | `retriable` | a retriable protocol answer (COORDINATOR_NOT_AVAILABLE, LEADER_NOT_AVAILABLE, ...), retried by kafkajs | DEBUG |
 * | `handled` | an answer the service handles and reports in its own words (a fenced producer, a message too large, a topic made by another instance) | DEBUG |
 * | `connection` | a connection lost, refused or timed out; kafkajs reconnects | WARN |
 * | `membership` | the group no longer counts this member, or rebalances; it rejoins | WARN |
 * | `restart` | the consumer stopped on a retriable error and restarts | WARN |
 * | `warning` | any other kafkajs warning | WARN |
 * | `error` | anything else kafkajs calls an error: refused credentials or rights, a crash | ERROR |
 */
import { createRequire } from "node:module"
import { Effect, Metric } from "effect"
import { type LogEntry, logLevel } from "kafkajs"
import { kafkaClientEvents } from "./Metrics.js"

export type KafkaLogKind =
  | "retriable"
  | "handled"
  | "connection"
  | "membership"
  | "restart"
  | "warning"
  | "error"

export interface KafkaLogClass {
  readonly level: "Debug" | "Warn" | "Error"
  readonly kind: KafkaLogKind
  /** The Kafka protocol error the line is about, when it names one (`GROUP_COORDINATOR_NOT_AVAILABLE`). */
  readonly errorType?: string
}

interface ProtocolError {
  readonly type: string
  readonly retriable: boolean
  readonly message: string
}

// kafkajs keeps Kafka's error codes (type, retriable, message) in this module; its log lines
// carry only the message of the error, so the message leads back to the type.
const { errorCodes } = createRequire(import.meta.url)("kafkajs/src/protocol/error.js") as {
  readonly errorCodes: ReadonlyArray<ProtocolError>
}
const byMessage = new Map(errorCodes.map((e) => [e.message, e]))
// Longest first, so that a message that contains a shorter one is found as itself.
const byLength = [...errorCodes].sort((a, b) => b.message.length - a.message.length)

/** Lost membership: kafkajs rejoins, the service says so in its own WARNING. */
const membership = new Set([
  "UNKNOWN_MEMBER_ID",
  "ILLEGAL_GENERATION",
  "REBALANCE_IN_PROGRESS",
  "MEMBER_ID_REQUIRED",
])

/** Answers the service acts on and reports itself (Transactions, Producer, Topics, the sinks' bisection). */
const handled = new Set([
  "INVALID_PRODUCER_EPOCH",
  "UNKNOWN_PRODUCER_ID",
  "OUT_OF_ORDER_SEQUENCE_NUMBER",
  "MESSAGE_TOO_LARGE",
  "RECORD_LIST_TOO_LARGE",
  "TOPIC_ALREADY_EXISTS",
])

/** kafkajs' errors of the network, and its retries running out: a reconnect or a restart follows. */
const networkErrors = new Set([
  "KafkaJSConnectionError",
  "KafkaJSConnectionClosedError",
  "KafkaJSRequestTimeoutError",
  "KafkaJSNumberOfRetriesExceeded",
])

const connectionLine =
  /^(Connection error|Connection timeout|Closed connection|Not connected|Failed to connect to (seed )?broker|Request .* timed out)/

const text = (value: unknown): string | undefined =>
  typeof value === "string"
    ? value
    : typeof value === "object" && value !== null && "message" in value
      ? String((value as { message: unknown }).message)
      : undefined

const nameOf = (value: unknown): string | undefined =>
  typeof value === "object" && value !== null && "name" in value
    ? String((value as { name: unknown }).name)
    : undefined

/** The protocol error a line is about: the error object itself, its `error` field, or a part of its text. */
const protocolErrorOf = (log: LogEntry["log"]): ProtocolError | undefined => {
  for (const candidate of [log.message as unknown, log.error as unknown]) {
    if (typeof candidate === "object" && candidate !== null && "type" in candidate) {
      const { type, retriable } = candidate as { type: unknown; retriable: unknown }
      if (typeof type === "string")
        return { type, retriable: retriable === true, message: text(candidate) ?? type }
    }
    const message = text(candidate)
    if (message === undefined) continue
    // `Response Produce(...)` with `error: <message>`; `Failed to send messages: <message>`;
    // `Crash: KafkaJSProtocolError: <message>`; `<message>, resync group`.
    const found = byMessage.get(message) ?? byLength.find((e) => message.includes(e.message))
    if (found !== undefined) return found
  }
  return undefined
}

export const classify = (entry: Pick<LogEntry, "level" | "log">): KafkaLogClass => {
  const { log } = entry
  const message = text(log.message) ?? ""
  const protocol = protocolErrorOf(log)
  const as = (kind: KafkaLogKind, level: KafkaLogClass["level"]): KafkaLogClass =>
    protocol === undefined ? { level, kind } : { level, kind, errorType: protocol.type }
  const crashedOn = /^Crash: (\w+)/.exec(message)?.[1]
  if (crashedOn !== undefined)
    // kafkajs restarts the consumer after a retriable crash; anything else stops the service.
    return networkErrors.has(crashedOn) || protocol?.retriable === true
      ? as("restart", "Warn")
      : as("error", "Error")
  if (message.startsWith("Restarting the consumer")) return as("restart", "Warn")
  if (protocol !== undefined) {
    if (membership.has(protocol.type)) return as("membership", "Warn")
    if (handled.has(protocol.type)) return as("handled", "Debug")
    if (protocol.retriable) return as("retriable", "Debug")
  }
  if (message.includes("re-joining")) return as("membership", "Warn")
  if (
    connectionLine.test(message) ||
    connectionLine.test(text(log.error as unknown) ?? "") ||
    networkErrors.has(nameOf(log.message) ?? "")
  )
    return as("connection", "Warn")
  return entry.level > logLevel.ERROR ? as("warning", "Warn") : as("error", "Error")
}

const logAt = { Debug: Effect.logDebug, Warn: Effect.logWarning, Error: Effect.logError } as const

/**
 * One kafkajs line as a log line of its class, annotated with the client's own fields
 * (`kafkajs`), `kafkajs_kind` and `kafkajs_error_type`, and counted in
 * pipeline_kafka_client_events_total{level,kind} whether or not LOGGING__LEVEL lets it through.
 */
export const logEntry = (entry: LogEntry): Effect.Effect<void> => {
  const { message, timestamp: _timestamp, logger: _logger, ...rest } = entry.log
  const c = classify(entry)
  return logAt[c.level](`kafkajs ${entry.namespace}: ${message}`).pipe(
    Effect.annotateLogs({
      kafkajs: rest,
      kafkajs_kind: c.kind,
      ...(c.errorType === undefined ? {} : { kafkajs_error_type: c.errorType }),
    }),
    Effect.andThen(
      Metric.update(
        Metric.withAttributes(kafkaClientEvents, { level: c.level.toUpperCase(), kind: c.kind }),
        1,
      ),
    ),
  )
}
