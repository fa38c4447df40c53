/**
 * kafkajs' own log lines, shaped as kafkajs 2.2.4 writes them (src/network/connection.js,
 * consumer/runner.js, cluster/brokerPool.js, ...), each at the level of what it is: the broker's
 * retriable answers at DEBUG, reconnects and rejoins at WARN, what needs a person at ERROR; each
 * counted by level and kind.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Metric } from "effect"
import { type LogEntry, logLevel } from "kafkajs"
import { classify, logEntry } from "../../src/Observability/KafkaClientLogs.js"
import * as Metrics from "../../src/Observability/Metrics.js"
import { captureLogs, parseJsonLines } from "./support.js"

const entry = (level: logLevel, message: unknown, extra: Record<string, unknown> = {}): LogEntry => ({
  namespace: "Connection",
  level,
  label: level === logLevel.ERROR ? "ERROR" : "WARN",
  log: { timestamp: "2026-12-01T00:00:00.000Z", logger: "kafkajs", message: message as string, ...extra },
})

/** A failed response, as Connection logs it: the request, and the error's message alone. */
const response = (request: string, error: string) =>
  entry(logLevel.ERROR, `Response ${request}`, { error, correlationId: 3, size: 40 })

const protocolError = (message: string, type: string, retriable: boolean) =>
  Object.assign(new Error(message), { name: "KafkaJSProtocolError", type, retriable })

const cases: ReadonlyArray<readonly [string, LogEntry, ReturnType<typeof classify>]> = [
  [
    "a transaction coordinator not there yet (a fresh broker)",
    response("InitProducerId(key: 22, version: 1)", "The group coordinator is not available"),
    { level: "Debug", kind: "retriable", errorType: "GROUP_COORDINATOR_NOT_AVAILABLE" },
  ],
  [
    "a group coordinator still loading",
    response(
      "GroupCoordinator(key: 10, version: 2)",
      "The coordinator is loading and hence can't process requests for this group",
    ),
    { level: "Debug", kind: "retriable", errorType: "GROUP_LOAD_IN_PROGRESS" },
  ],
  [
    "a coordinator that moved",
    response("JoinGroup(key: 11, version: 5)", "This is not the correct coordinator for this group"),
    { level: "Debug", kind: "retriable", errorType: "NOT_COORDINATOR_FOR_GROUP" },
  ],
  [
    "a leader being elected",
    response(
      "Produce(key: 0, version: 7)",
      "There is no leader for this topic-partition as we are in the middle of a leadership election",
    ),
    { level: "Debug", kind: "retriable", errorType: "LEADER_NOT_AVAILABLE" },
  ],
  [
    "a leader that moved",
    response("Produce(key: 0, version: 7)", "This server is not the leader for that topic-partition"),
    { level: "Debug", kind: "retriable", errorType: "NOT_LEADER_FOR_PARTITION" },
  ],
  [
    "a topic just created",
    response("ListOffsets(key: 2, version: 3)", "This server does not host this topic-partition"),
    { level: "Debug", kind: "retriable", errorType: "UNKNOWN_TOPIC_OR_PARTITION" },
  ],
  [
    "a rebalance",
    response("Heartbeat(key: 12, version: 3)", "The group is rebalancing, so a rejoin is needed"),
    { level: "Warn", kind: "membership", errorType: "REBALANCE_IN_PROGRESS" },
  ],
  [
    "a member the coordinator forgot (the service says so itself as a WARNING)",
    {
      ...entry(logLevel.ERROR, "The coordinator is not aware of this member, re-joining the group", {
        groupId: "g",
        memberId: "m",
        error: "The coordinator is not aware of this member",
      }),
      namespace: "Runner",
    },
    { level: "Warn", kind: "membership", errorType: "UNKNOWN_MEMBER_ID" },
  ],
  [
    "a fenced transactional producer (the service gives the batch up with a WARNING)",
    response(
      "AddPartitionsToTxn(key: 24, version: 1)",
      "Producer attempted an operation with an old epoch. Either there is a newer producer with the same transactionalId, or the producer's transaction has been expired by the broker",
    ),
    { level: "Debug", kind: "handled", errorType: "INVALID_PRODUCER_EPOCH" },
  ],
  [
    "a refused connection",
    entry(logLevel.ERROR, "Connection error: connect ECONNREFUSED 127.0.0.1:9092", { stack: "..." }),
    { level: "Warn", kind: "connection" },
  ],
  [
    "the seed broker away",
    {
      ...entry(
        logLevel.ERROR,
        "Failed to connect to seed broker, trying another broker from the list: Connection error: connect ECONNREFUSED 127.0.0.1:9092",
        { retryCount: 0, retryTime: 300 },
      ),
      namespace: "BrokerPool",
    },
    { level: "Warn", kind: "connection" },
  ],
  [
    "a request on a closed connection",
    response("Metadata(key: 3, version: 6)", "Closed connection"),
    { level: "Warn", kind: "connection" },
  ],
  [
    "a consumer restarting after its retries ran out",
    {
      ...entry(logLevel.ERROR, "Crash: KafkaJSNumberOfRetriesExceeded: Connection error: read ECONNRESET", {
        groupId: "g",
      }),
      namespace: "Consumer",
    },
    { level: "Warn", kind: "restart" },
  ],
  [
    "a refused login",
    response("SaslAuthenticate(key: 36, version: 1)", "SASL Authentication failed"),
    { level: "Error", kind: "error", errorType: "SASL_AUTHENTICATION_FAILED" },
  ],
  [
    "a topic the credentials may not read, as an error object",
    entry(
      logLevel.ERROR,
      protocolError(
        "Not authorized to access topics: [Topic authorization failed]",
        "TOPIC_AUTHORIZATION_FAILED",
        false,
      ),
    ),
    { level: "Error", kind: "error", errorType: "TOPIC_AUTHORIZATION_FAILED" },
  ],
  [
    "a consumer that crashed for good",
    {
      ...entry(
        logLevel.ERROR,
        "Crash: KafkaJSProtocolError: Not authorized to access group: Group authorization failed",
        { groupId: "g" },
      ),
      namespace: "Consumer",
    },
    { level: "Error", kind: "error", errorType: "GROUP_AUTHORIZATION_FAILED" },
  ],
  [
    "any other kafkajs warning",
    entry(logLevel.WARN, "Limiting retries for the idempotent producer may invalidate EoS guarantees"),
    { level: "Warn", kind: "warning" },
  ],
  [
    "any other kafkajs error",
    entry(logLevel.ERROR, "Error when calling eachBatch", { error: "Cannot read properties of undefined" }),
    { level: "Error", kind: "error" },
  ],
]

const count = (level: string, kind: string) =>
  Metric.value(Metric.withAttributes(Metrics.kafkaClientEvents, { level, kind })).pipe(
    Effect.map((state) => state.count),
  )

describe("kafkajs' log lines", () => {
  for (const [what, line, expected] of cases) {
    it(`${what}: ${expected.level} (${expected.kind})`, () => {
      assert.deepStrictEqual(classify(line), expected)
    })
  }

  it.effect("are logged at their level with their kind, and counted even when the level hides them", () =>
    Effect.gen(function* () {
      const before = yield* count("DEBUG", "retriable")
      const errorsBefore = yield* count("ERROR", "error")
      const { lines } = yield* captureLogs(
        Effect.all([
          logEntry(cases[0]![1]),
          logEntry(response("SaslAuthenticate(key: 36, version: 1)", "SASL Authentication failed")),
        ]),
        { level: "INFO", format: "json" },
      )
      const logged = parseJsonLines(lines)
      assert.strictEqual(logged.length, 1, "the retriable answer is below INFO")
      assert.strictEqual(logged[0]!.level, "ERROR")
      assert.strictEqual(
        logged[0]!.message,
        "kafkajs Connection: Response SaslAuthenticate(key: 36, version: 1)",
      )
      assert.strictEqual(logged[0]!.annotations.kafkajs_kind, "error")
      assert.strictEqual(logged[0]!.annotations.kafkajs_error_type, "SASL_AUTHENTICATION_FAILED")
      assert.deepInclude(logged[0]!.annotations.kafkajs as object, { error: "SASL Authentication failed" })
      assert.strictEqual((yield* count("DEBUG", "retriable")) - before, 1)
      assert.strictEqual((yield* count("ERROR", "error")) - errorsBefore, 1)
    }),
  )
})
