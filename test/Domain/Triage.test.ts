/**
 * The triage of driver errors, as a table: only failures known to be transient are retried
 * without end; what the records cause is isolated; anything else is of unknown kind.
 */
import { assert, describe, it } from "@effect/vitest"
import kafkajs from "kafkajs"
import {
  BSON,
  MongoBulkWriteError,
  MongoError,
  MongoNetworkError,
  MongoNetworkTimeoutError,
  MongoServerError,
  MongoServerSelectionError,
} from "mongodb"
import { type ErrorKind, kindOf } from "../../src/Domain/ErrorKind.js"
import { KafkaProduceError, kindOfKafkaError } from "../../src/Kafka/Errors.js"
import { kindOfMongoError, MongoWriteError } from "../../src/Mongo/Errors.js"

const protocol = (type: string, code: number, retriable: boolean) =>
  new kafkajs.KafkaJSProtocolError({ type, code, retriable, message: type } as unknown as Error)

const gaveUp = (cause: Error) =>
  new kafkajs.KafkaJSNumberOfRetriesExceeded(cause, { retryCount: 5, retryTime: 1000 })

const server = (code: number, labels: ReadonlyArray<string> = []) =>
  new MongoServerError({ code, errmsg: `code ${code}`, errorLabels: [...labels] } as never)

const kafkaTable: ReadonlyArray<readonly [string, unknown, ErrorKind]> = [
  ["broker connection refused", new kafkajs.KafkaJSConnectionError("connect ECONNREFUSED"), "transient"],
  [
    "request timed out",
    new kafkajs.KafkaJSRequestTimeoutError("Request produce(key: 0, version: 7) timed out"),
    "transient",
  ],
  [
    "broker not found",
    new (kafkajs.KafkaJSBrokerNotFound as unknown as new (m: string) => Error)("none"),
    "transient",
  ],
  ["leader not available", protocol("LEADER_NOT_AVAILABLE", 5, true), "transient"],
  ["not leader (leader change)", protocol("NOT_LEADER_FOR_PARTITION", 6, true), "transient"],
  ["throttled / retriable protocol error", protocol("REQUEST_TIMED_OUT", 7, true), "transient"],
  ["retries exhausted on a retriable error", gaveUp(protocol("LEADER_NOT_AVAILABLE", 5, true)), "transient"],
  [
    "retries exhausted on a connection error",
    gaveUp(new kafkajs.KafkaJSConnectionError("gone")),
    "transient",
  ],
  ["message too large", protocol("MESSAGE_TOO_LARGE", 10, false), "record"],
  ["record list too large", protocol("RECORD_LIST_TOO_LARGE", 18, false), "record"],
  ["invalid record", protocol("INVALID_RECORD", 87, false), "record"],
  ["stack overflow while encoding", new RangeError("Maximum call stack size exceeded"), "record"],
  ["topic authorization failed", protocol("TOPIC_AUTHORIZATION_FAILED", 29, false), "unknown"],
  [
    "a newer producer of the transactional id (old epoch)",
    protocol("INVALID_PRODUCER_EPOCH", 47, false),
    "fenced",
  ],
  ["a newer producer of the transactional id (fenced)", protocol("PRODUCER_FENCED", 90, false), "fenced"],
  ["fenced, after kafkajs gave up", gaveUp(protocol("INVALID_PRODUCER_EPOCH", 47, false)), "fenced"],
  ["a string", "something odd", "unknown"],
  ["an Error of no known class", new Error("what"), "unknown"],
]

const mongoTable: ReadonlyArray<readonly [string, unknown, ErrorKind]> = [
  ["network error", new MongoNetworkError("connection reset"), "transient"],
  ["socket timeout (a server that never answers)", new MongoNetworkTimeoutError("timed out"), "transient"],
  [
    "server selection",
    new MongoServerSelectionError("no server", { type: "Unknown", servers: new Map() } as never),
    "transient",
  ],
  [
    "a bulk write stopped as a whole by an unreachable server",
    new MongoBulkWriteError(
      new MongoServerSelectionError("connect ECONNREFUSED", { type: "Unknown", servers: new Map() } as never),
      {} as never,
    ),
    "transient",
  ],
  ["not primary", server(10107), "transient"],
  ["primary stepped down", server(189), "transient"],
  ["shutdown in progress", server(91), "transient"],
  ["write concern failed", server(64), "transient"],
  ["retryable write label", server(12345, ["RetryableWriteError"]), "transient"],
  ["rate limited", server(16500), "transient"],
  ["bad value", server(2), "record"],
  ["nesting too deep (Overflow)", server(15), "record"],
  ["$-prefixed field name", server(52), "record"],
  ["document too large", server(10334), "record"],
  ["validation failed", server(121), "record"],
  ["BSON encoder refuses a field name", new BSON.BSONError("key must not contain null bytes"), "record"],
  ["stack overflow while encoding", new RangeError("Maximum call stack size exceeded"), "record"],
  ["unauthorized (no known kind)", server(13), "unknown"],
  ["a driver error of no known class", new MongoError("odd"), "unknown"],
  ["a string", "odd", "unknown"],
]

describe("error triage", () => {
  for (const [what, cause, kind] of kafkaTable) {
    it(`Kafka: ${what} is ${kind}`, () => {
      assert.strictEqual(kindOfKafkaError(cause), kind)
      const error = new KafkaProduceError({ topic: "t", messages: 1, kind: kindOfKafkaError(cause), cause })
      assert.strictEqual(kindOf(error), kind)
      // The DAG's task retries take transient and unknown errors, never record or fenced ones.
      assert.strictEqual(error.retryable, kind === "transient" || kind === "unknown")
    })
  }
  for (const [what, cause, kind] of mongoTable) {
    it(`MongoDB: ${what} is ${kind}`, () => {
      assert.strictEqual(kindOfMongoError(cause), kind)
      const error = new MongoWriteError({ documents: 1, kind: kindOfMongoError(cause), cause })
      assert.strictEqual(error.retryable, kind !== "record")
    })
  }
  it("a value without a kind is unknown", () => {
    assert.strictEqual(kindOf({ retryable: true }), "unknown")
    assert.strictEqual(kindOf(undefined), "unknown")
  })
})
