/**
 * The kafkajs client, configured from AppConfig: plain TCP for a local broker, SASL_SSL with
 * PLAIN when an API key and secret are set (Confluent Cloud). kafkajs' own log lines are
 * forwarded to the service's logger at WARN and above.
 */
import { Context, Duration, Effect, Layer, Redacted } from "effect"
import { Kafka, type LogEntry, logLevel } from "kafkajs"
import { AppConfig } from "../Config/AppConfig.js"
import { silenceKafkajsTimeoutWarning } from "./NodeWarnings.js"

/** kafkajs logs from its own callbacks; run each line through the service's loggers. */
const forwardTo =
  (context: Context.Context<never>) =>
  (entry: LogEntry): void => {
    const { message, timestamp: _timestamp, logger: _logger, ...rest } = entry.log
    const log = entry.level <= logLevel.ERROR ? Effect.logError : Effect.logWarning
    Effect.runForkWith(context)(
      log(`kafkajs ${entry.namespace}: ${message}`).pipe(Effect.annotateLogs({ kafkajs: rest })),
    )
  }

export class KafkaClient extends Context.Service<KafkaClient, Kafka>()("pipeline/KafkaClient") {
  static readonly layer = Layer.effect(
    KafkaClient,
    Effect.gen(function* () {
      silenceKafkajsTimeoutWarning()
      const { kafka } = yield* AppConfig
      const forward = forwardTo(yield* Effect.context<never>())
      return new Kafka({
        clientId: kafka.clientId,
        brokers: [...kafka.brokers],
        logLevel: logLevel.WARN,
        logCreator: () => forward,
        requestTimeout: Duration.toMillis(kafka.requestTimeout),
        connectionTimeout: Math.min(Duration.toMillis(kafka.requestTimeout), 10_000),
        ...(kafka.sasl === undefined
          ? {}
          : {
              ssl: true,
              sasl: {
                mechanism: "plain" as const,
                username: kafka.sasl.username,
                password: Redacted.value(kafka.sasl.password),
              },
            }),
      })
    }),
  )
}
