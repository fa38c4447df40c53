/**
 * One idempotent kafkajs producer (acks=all) shared by the sink topic and the dead-letter
 * topic. Connected when the layer is built, disconnected when it is torn down. `layer` reads
 * the service's AppConfig; `layerConfig` takes the settings directly (the test-data generator).
 *
 * A send is cut into requests by bytes, so that no partition's record batch exceeds what the
 * topic accepts (its max.message.bytes, read from the broker at start); the requests go one
 * after another, in order. Every send has a deadline: a broker that never answers becomes a
 * transient KafkaProduceError, not a wait without end.
 */
import { Context, Duration, Effect, Layer } from "effect"
import { type Message, Partitioners, type Producer } from "kafkajs"
import { AppConfig } from "../Config/AppConfig.js"
import { type CompressionName, compressionTypes } from "./Codecs.js"
import { KafkaConnectionError, KafkaProduceError, kindOfKafkaError, producerStateLost } from "./Errors.js"
import { KafkaClient } from "./KafkaClient.js"
import { requirePatchedEncoder } from "./KafkajsPatch.js"
import { encodedSize, encodedSizeBound } from "./MessageSize.js"
import { readMaxMessageBytes } from "./Topics.js"

export interface ProducerShape {
  /**
   * Sends and waits for every message to be acknowledged by all in-sync replicas; record batches
   * compressed with `compression`, or the producer's own codec (KAFKA__COMPRESSION).
   */
  readonly send: (
    topic: string,
    messages: ReadonlyArray<Message>,
    compression?: CompressionName,
  ) => Effect.Effect<void, KafkaProduceError>
  /** The largest record batch `topic` accepts, in bytes (its max.message.bytes). */
  readonly maxMessageBytes: (topic: string) => number
}

export interface ProducerConfig {
  /** For error messages. */
  readonly brokers: ReadonlyArray<string>
  /** The topics whose max.message.bytes is read from the broker when the producer starts. */
  readonly topics: ReadonlyArray<string>
  /** What any other topic is assumed to accept, in bytes. */
  readonly maxMessageBytes: number
  /** kafkajs' request timeout of each send. */
  readonly requestTimeout: Duration.Duration
  /** A send's deadline, kafkajs' own retries included: past it the send is a transient failure. */
  readonly sendDeadline: Duration.Duration
  /** The codec of record batches sent without one of their own. */
  readonly compression: CompressionName
}

/**
 * `call` bounded by `deadline`: past it, a transient KafkaProduceError saying what got no answer
 * (`what` is "no acknowledgement" for a send).
 */
export const withinDeadline = <A, E>(
  call: Effect.Effect<A, E>,
  deadline: Duration.Duration,
  failure: { readonly topic: string; readonly messages: number; readonly what: string },
): Effect.Effect<A, E | KafkaProduceError> =>
  call.pipe(
    Effect.timeoutOrElse({
      duration: deadline,
      orElse: () =>
        Effect.fail(
          new KafkaProduceError({
            topic: failure.topic,
            messages: failure.messages,
            kind: "transient",
            cause: new Error(`${failure.what} within ${Duration.format(deadline)}`),
          }),
        ),
    }),
  )

/** How long the producer's disconnect may take at shutdown before it is left behind. */
const disconnectTimeout = Duration.seconds(10)

/** Room left in every request for the record batch's own header and the request's framing. */
export const batchOverheadBytes = 1024

/** Consecutive runs of messages whose encoded sizes add up to at most `budget` (a larger message runs alone). */
export const requestsOf = (messages: ReadonlyArray<Message>, budget: number): ReadonlyArray<Message[]> => {
  // Most sends fit in one request by a bound read off the lengths: then no size is counted exactly.
  let bound = 0
  for (let i = 0; i < messages.length && bound <= budget; i++) bound += encodedSizeBound(messages[i]!)
  if (bound <= budget) return messages.length === 0 ? [] : [messages.slice()]
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

const make = (config: ProducerConfig) =>
  Effect.gen(function* () {
    yield* Effect.sync(requirePatchedEncoder)
    const client = yield* KafkaClient
    const limits = yield* readMaxMessageBytes(config.topics, config.brokers)
    const connect = () =>
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
          new KafkaConnectionError({ client: "producer", brokers: config.brokers.join(","), cause }),
      })
    // The producer in use: replaced when the broker no longer knows its sequence numbers.
    let producer: Producer = yield* Effect.acquireRelease(connect(), () =>
      Effect.promise(() => producer.disconnect().catch(() => undefined)).pipe(
        Effect.timeoutOption(disconnectTimeout),
      ),
    )
    /**
     * The broker lost this producer's sequence of a partition (the topic was deleted and made
     * again, the producer id expired): kafkajs cannot recover it, so a new producer (a new
     * producer id, sequences from 0) takes over; the failed send is retried by the caller.
     */
    const replace = (failed: Producer) =>
      connect().pipe(
        Effect.tap((fresh) =>
          Effect.sync(() => {
            if (producer !== failed) return void fresh.disconnect().catch(() => undefined)
            producer = fresh
            void failed.disconnect().catch(() => undefined)
          }),
        ),
        Effect.andThen(
          Effect.logWarning("the broker lost the producer's sequence numbers; a new producer takes over"),
        ),
        Effect.ignore,
      )
    const maxMessageBytes = (topic: string) => limits.get(topic) ?? config.maxMessageBytes
    const requestTimeoutMs = Duration.toMillis(config.requestTimeout)
    const sendOne = (topic: string, messages: Message[], compression: CompressionName) =>
      Effect.suspend(() => {
        const using = producer
        return Effect.tryPromise({
          try: () =>
            using.send({
              topic,
              acks: -1,
              timeout: requestTimeoutMs,
              messages,
              compression: compressionTypes[compression],
            }),
          catch: (cause) =>
            new KafkaProduceError({
              topic,
              messages: messages.length,
              kind: producerStateLost(cause) ? "transient" : kindOfKafkaError(cause),
              cause,
            }),
        }).pipe(Effect.tapError((error) => (producerStateLost(error.cause) ? replace(using) : Effect.void)))
      }).pipe((send) =>
        withinDeadline(send, config.sendDeadline, {
          topic,
          messages: messages.length,
          what: "no acknowledgement",
        }),
      )
    return KafkaProducer.of({
      maxMessageBytes,
      send: (topic, messages, compression = config.compression) =>
        messages.length === 0
          ? Effect.void
          : Effect.forEach(
              requestsOf(messages, maxMessageBytes(topic) - batchOverheadBytes),
              (request) => sendOne(topic, request, compression),
              { discard: true },
            ),
    })
  })

export class KafkaProducer extends Context.Service<KafkaProducer, ProducerShape>()("pipeline/KafkaProducer") {
  static readonly layerConfig = (config: ProducerConfig) => Layer.effect(KafkaProducer, make(config))

  /** The sink and dead-letter topics' producer. */
  static readonly layer = Layer.effect(
    KafkaProducer,
    AppConfig.use(({ kafka }) => make({ ...kafka, topics: [kafka.topicSink, kafka.topicDlq] })),
  )
}
