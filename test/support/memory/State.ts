/**
 * What the in-memory stand-ins share: the source topic's log and commits, what was sent, the
 * documents, and the failures a test switches on. One per `InMemory.layer`.
 */
import type { KafkaMessage, Message } from "kafkajs"
import type { Document } from "mongodb"
import { KafkaProduceError } from "../../../src/Kafka/Errors.js"
import type { MongoWriteError } from "../../../src/Mongo/Errors.js"
import type { SavedKeys } from "../../../src/Mongo/SavedKeys.js"

export interface SentMessage {
  readonly topic: string
  readonly message: Message
}

export class State {
  /** The source topic's partitions: every message appended, in offset order. */
  readonly log = new Map<number, KafkaMessage[]>()
  /** Committed offset (next to read) per partition. */
  readonly committed = new Map<number, number>()
  readonly sent: SentMessage[] = []
  readonly documents = new Map<string, Document>()
  /** The duplicate checks' saved windows: each scope's batches of keys, by first offset. */
  readonly savedKeys = new Map<string, Map<string, SavedKeys>>()
  /** Sends to a topic fail while its entry is set. */
  readonly failingTopics = new Map<string, KafkaProduceError>()
  mongoDown: MongoWriteError | undefined = undefined
  /** While set, every write waits without an answer (a server holding the call open). */
  mongoHangs = false
  /** Why commits fail now (the group lost this member), as the source reports it. */
  commitFailure: string | undefined = undefined
  /** Documents MongoDB refuses with a data error, by `_id`. */
  readonly refusedIds = new Set<string>()
  clear() {
    this.log.clear()
    this.committed.clear()
    this.sent.length = 0
    this.documents.clear()
    this.savedKeys.clear()
    this.failingTopics.clear()
    this.mongoDown = undefined
    this.mongoHangs = false
    this.commitFailure = undefined
    this.refusedIds.clear()
  }
}

export const bytesOf = (value: unknown): Buffer =>
  Buffer.isBuffer(value)
    ? value
    : value instanceof Uint8Array
      ? Buffer.from(value)
      : Buffer.from(typeof value === "string" ? value : JSON.stringify(value))

export const transient = (topic: string, messages: number) =>
  new KafkaProduceError({ topic, messages, kind: "transient", cause: "the broker is away (in-memory test)" })
