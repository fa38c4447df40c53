/**
 * One idempotent kafkajs producer (acks=all) shared by the sink topic and the dead-letter
 * topic. Connected when the layer is built, disconnected when it is torn down.
 *
 * A send is cut into requests by bytes, so that no partition's record batch exceeds what the
 * topic accepts (its max.message.bytes, read from the broker at start); the requests go one
 * after another, in order. Every send has a deadline: a broker that never answers becomes a
 * transient KafkaProduceError, not a wait without end.
 */
import { Context, Duration, Effect, Layer } from "effect"
import { CompressionTypes, type Message, Partitioners } from "kafkajs"
import { AppConfig } from "../Config/AppConfig.js"
import { KafkaConnectionError, KafkaProduceError, kindOfKafkaError } from "./Errors.js"
import { KafkaClient } from "./KafkaClient.js"
import { encodedSize } from "./Messages.js"
import { readMaxMessageBytes } from "./Topics.js"

export interface ProducerShape {
  /** Sends and waits for every message to be acknowledged by all in-sync replicas. */
  readonly send: (
    topic: string,
    messages: ReadonlyArray<Message>,
    compression?: "none" | "gzip",
  ) => Effect.Effect<void, KafkaProduceError>
  /** The largest record batch `topic` accepts, in bytes (its max.message.bytes). */
  readonly maxMessageBytes: (topic: string) => number
}

/** Room left in every request for the record batch's own header and the request's framing. */
export const batchOverheadBytes = 1024

/** Consecutive runs of messages whose encoded sizes add up to at most `budget` (a larger message runs alone). */
export const requestsOf = (messages: ReadonlyArray<Message>, budget: number): ReadonlyArray<Message[]> => {
  const requests: Message[][] = []
  let current: Message[] = []
  let bytes = 0
  for (const message of messages) {
    const size = encodedSize(message)
    if (current.length > 0 && bytes + size > budget) {
      requests.push(current)
      current = []
      bytes = 0
    }
    current.push(message)
    bytes += size
  }
  if (current.length > 0) requests.push(current)
  return requests
}

export class KafkaProducer extends Context.Service<KafkaProducer, ProducerShape>()("pipeline/KafkaProducer") {
  static readonly layer = Layer.effect(
    KafkaProducer,
    Effect.gen(function* () {
      const client = yield* KafkaClient
      const { kafka } = yield* AppConfig
      const limits = yield* readMaxMessageBytes([kafka.topicSink, kafka.topicDlq])
      const producer = yield* Effect.acquireRelease(
        Effect.tryPromise({
          try: async () => {
            const p = client.producer({
              idempotent: true,
              maxInFlightRequests: 1,
              allowAutoTopicCreation: false,
              createPartitioner: Partitioners.DefaultPartitioner,
            })
            await p.connect()
            return p
          },
          catch: (cause) =>
            new KafkaConnectionError({ client: "producer", brokers: kafka.brokers.join(","), cause }),
        }),
        (p) => Effect.promise(() => p.disconnect().catch(() => undefined)),
      )
      const maxMessageBytes = (topic: string) => limits.get(topic) ?? kafka.maxMessageBytes
      const requestTimeoutMs = Duration.toMillis(kafka.requestTimeout)
      const sendOne = (topic: string, messages: Message[], compression: "none" | "gzip") =>
        Effect.tryPromise({
          try: () =>
            producer.send({
              topic,
              acks: -1,
              timeout: requestTimeoutMs,
              messages,
              compression: compression === "gzip" ? CompressionTypes.GZIP : CompressionTypes.None,
            }),
          catch: (cause) =>
            new KafkaProduceError({ topic, messages: messages.length, kind: kindOfKafkaError(cause), cause }),
        }).pipe(
          Effect.timeoutOrElse({
            duration: kafka.sendDeadline,
            orElse: () =>
              Effect.fail(
                new KafkaProduceError({
                  topic,
                  messages: messages.length,
                  kind: "transient",
                  cause: new Error(`no acknowledgement within ${Duration.format(kafka.sendDeadline)}`),
                }),
              ),
          }),
        )
      return KafkaProducer.of({
        maxMessageBytes,
        send: (topic, messages, compression = "none") =>
          messages.length === 0
            ? Effect.void
            : Effect.forEach(
                requestsOf(messages, maxMessageBytes(topic) - batchOverheadBytes),
                (request) => sendOne(topic, request, compression),
                { discard: true },
              ),
      })
    }),
  )
}
