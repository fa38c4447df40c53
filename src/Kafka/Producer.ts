/**
 * One idempotent kafkajs producer (acks=all) shared by the sink topic and the dead-letter
 * topic. Connected when the layer is built, disconnected when it is torn down.
 */
import { Context, Effect, Layer } from "effect"
import { CompressionTypes, type Message, Partitioners } from "kafkajs"
import { AppConfig } from "../Config/AppConfig.js"
import { isRetriableKafkaError, KafkaConnectionError, KafkaProduceError } from "./Errors.js"
import { KafkaClient } from "./KafkaClient.js"

export interface ProducerShape {
  /** Sends and waits for every message to be acknowledged by all in-sync replicas. */
  readonly send: (
    topic: string,
    messages: ReadonlyArray<Message>,
    compression?: "none" | "gzip",
  ) => Effect.Effect<void, KafkaProduceError>
}

export class KafkaProducer extends Context.Service<KafkaProducer, ProducerShape>()("pipeline/KafkaProducer") {
  static readonly layer = Layer.effect(
    KafkaProducer,
    Effect.gen(function* () {
      const client = yield* KafkaClient
      const { kafka } = yield* AppConfig
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
      return KafkaProducer.of({
        send: (topic, messages, compression = "none") =>
          messages.length === 0
            ? Effect.void
            : Effect.tryPromise({
                try: () =>
                  producer.send({
                    topic,
                    acks: -1,
                    messages: [...messages],
                    compression: compression === "gzip" ? CompressionTypes.GZIP : CompressionTypes.None,
                  }),
                catch: (cause) =>
                  new KafkaProduceError({
                    topic,
                    messages: messages.length,
                    retryable: isRetriableKafkaError(cause),
                    cause,
                  }),
              }).pipe(Effect.asVoid),
      })
    }),
  )
}
