/**
 * One idempotent kafkajs producer (acks=all) shared by the sink topic and the dead-letter
 * topic. Connected when the layer is built, disconnected when it is torn down. `layer` reads
 * the service's AppConfig; `layerConfig` takes the settings directly (the test-data generator).
 *
 * A send is cut into requests by bytes, so that no partition's record batch exceeds what the
 * topic accepts (its max.message.bytes, read from the broker at start); the requests go one
 * after another, in order, and the sends to one topic that wait for the request in flight go
 * together in the next one, as far as the bytes allow. Every send has a deadline: a broker that
 * never answers becomes a transient KafkaProduceError, not a wait without end.
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

/** A send waiting for its request; `settle` is told how the request ended, and by which producer. */
interface Queued {
  readonly topic: string
  readonly messages: Message[]
  readonly compression: CompressionName
  /** The messages' encoded size, or a bound of it. */
  readonly bytes: number
  /** Sent in a request of its own (a request it shared failed for a record's sake). */
  alone: boolean
  /** Given up by its caller. */
  gone: boolean
  readonly settle: (failure: { readonly cause: unknown } | undefined, using: Producer) => void
}

/** How long the producer's disconnect may take at shutdown before it is left behind. */
const disconnectTimeout = Duration.seconds(10)

/** Room left in every request for the record batch's own header and the request's framing. */
export const batchOverheadBytes = 1024

/** A request's messages, and their size: a bound read off the lengths, or counted in bytes. */
interface Request {
  readonly messages: Message[]
  readonly bytes: number
}

/** Consecutive runs of messages whose encoded sizes add up to at most `budget` (a larger message runs alone), with their sizes. */
const sizedRequestsOf = (messages: ReadonlyArray<Message>, budget: number): ReadonlyArray<Request> => {
  // Most sends fit in one request by a bound read off the lengths: then no size is counted exactly.
  let bound = 0
  for (let i = 0; i < messages.length && bound <= budget; i++) bound += encodedSizeBound(messages[i]!)
  if (bound <= budget) return messages.length === 0 ? [] : [{ messages: messages.slice(), bytes: bound }]
  const requests: Request[] = []
  let current: Message[] = []
  let bytes = 0
  for (const message of messages) {
    const size = encodedSize(message)
    if (current.length > 0 && bytes + size > budget) {
      requests.push({ messages: current, bytes })
      current = []
      bytes = 0
    }
    current.push(message)
    bytes += size
  }
  if (current.length > 0) requests.push({ messages: current, bytes })
  return requests
}

/** The messages of `sizedRequestsOf`'s requests. */
export const requestsOf = (messages: ReadonlyArray<Message>, budget: number): ReadonlyArray<Message[]> =>
  sizedRequestsOf(messages, budget).map((r) => r.messages)

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

    // kafkajs sends an idempotent producer's requests one at a time, each holding a lock on the
    // broker while it is encoded and answered, and the sends waiting for the lock race for it in no
    // order. So the sends go one request at a time from here, in order: while one is in flight, the
    // sends to the same topic with the same codec queue up, and go together in the next request
    // (as much of the queue as one request takes). A queued send that is given up leaves the queue.
    const queue: Array<Queued> = []
    let inFlight = false
    const pump = (): void => {
      if (inFlight || queue.length === 0) return
      const first = queue[0]!
      const budget = maxMessageBytes(first.topic) - batchOverheadBytes
      let bytes = first.bytes
      let taken = 1
      while (!first.alone && taken < queue.length) {
        const next = queue[taken]!
        if (
          next.alone ||
          next.topic !== first.topic ||
          next.compression !== first.compression ||
          bytes + next.bytes > budget
        )
          break
        bytes += next.bytes
        taken++
      }
      const sends = queue.splice(0, taken)
      const messages = sends.length === 1 ? first.messages : sends.flatMap((q) => q.messages)
      const using = producer
      inFlight = true
      using
        .send({
          topic: first.topic,
          acks: -1,
          timeout: requestTimeoutMs,
          messages,
          compression: compressionTypes[first.compression],
        })
        .then(
          () => {
            for (const q of sends) q.settle(undefined, using)
          },
          (cause: unknown) => {
            if (sends.length > 1 && kindOfKafkaError(cause) === "record") {
              // A record of one of them: each goes again alone, so that only its own send fails.
              const again = sends.filter((q) => !q.gone)
              for (const q of again) q.alone = true
              queue.unshift(...again)
              return
            }
            for (const q of sends) q.settle({ cause }, using)
          },
        )
        .finally(() => {
          inFlight = false
          pump()
        })
    }
    const sendOne = (topic: string, { messages, bytes }: Request, compression: CompressionName) =>
      Effect.callback<void, KafkaProduceError>((resume) => {
        const queued: Queued = {
          topic,
          messages,
          compression,
          bytes,
          alone: false,
          gone: false,
          settle: (failure, using) =>
            resume(
              failure === undefined
                ? Effect.void
                : Effect.fail(
                    new KafkaProduceError({
                      topic,
                      messages: messages.length,
                      kind: producerStateLost(failure.cause) ? "transient" : kindOfKafkaError(failure.cause),
                      cause: failure.cause,
                    }),
                  ).pipe(
                    Effect.tapError(() => (producerStateLost(failure.cause) ? replace(using) : Effect.void)),
                  ),
            ),
        }
        queue.push(queued)
        pump()
        return Effect.sync(() => {
          queued.gone = true
          const at = queue.indexOf(queued)
          if (at >= 0) queue.splice(at, 1)
        })
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
              sizedRequestsOf(messages, maxMessageBytes(topic) - batchOverheadBytes),
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
