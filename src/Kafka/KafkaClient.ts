/**
 * The kafkajs client: plain TCP for a local broker, SASL_SSL with PLAIN when an API key and
 * secret are set (Confluent Cloud); it reads and writes every codec Kafka defines (Codecs.ts). kafkajs' own log lines are forwarded to the logger of the
 * layer's context, each at the level of what it is (Observability/KafkaClientLogs.ts). `layer` reads the service's AppConfig; `layerConfig`
 * takes the settings directly (the test-data generator).
 */
import { Context, Duration, Effect, Layer, Redacted } from "effect"
import { Kafka, type LogEntry, logLevel, type RetryOptions } from "kafkajs"
import { AppConfig } from "../Config/AppConfig.js"
import { logEntry } from "../Observability/KafkaClientLogs.js"
import { registerCodecs } from "./Codecs.js"
import { silenceKafkajsTimeoutWarning } from "./NodeWarnings.js"

export interface KafkaClientConfig {
  readonly clientId: string
  readonly brokers: ReadonlyArray<string>
  readonly sasl: { readonly username: string; readonly password: Redacted.Redacted<string> } | undefined
  /** kafkajs' request timeout: how long one request may wait for the broker's answer. */
  readonly requestTimeout: Duration.Duration
  /** kafkajs' retries of every request of this client, its producers and admins; kafkajs' defaults when unset. */
  readonly retry?: RetryOptions
}

/**
 * kafkajs logs from its own callbacks; run each line through the context's loggers, at the level
 * of what it is (KafkaClientLogs.ts: the broker's retriable answers are DEBUG, reconnects WARN).
 */
const forwardTo =
  (context: Context.Context<never>) =>
  (entry: LogEntry): void => {
    Effect.runForkWith(context)(logEntry(entry))
  }

const make = (config: KafkaClientConfig) =>
  Effect.gen(function* () {
    silenceKafkajsTimeoutWarning()
    registerCodecs()
    const forward = forwardTo(yield* Effect.context<never>())
    return new Kafka({
      clientId: config.clientId,
      brokers: [...config.brokers],
      logLevel: logLevel.WARN,
      logCreator: () => forward,
      requestTimeout: Duration.toMillis(config.requestTimeout),
      connectionTimeout: Math.min(Duration.toMillis(config.requestTimeout), 10_000),
      ...(config.retry === undefined ? {} : { retry: config.retry }),
      ...(config.sasl === undefined
        ? {}
        : {
            ssl: true,
            sasl: {
              mechanism: "plain" as const,
              username: config.sasl.username,
              password: Redacted.value(config.sasl.password),
            },
          }),
    })
  })

export class KafkaClient extends Context.Service<KafkaClient, Kafka>()("pipeline/KafkaClient") {
  static readonly layerConfig = (config: KafkaClientConfig) => Layer.effect(KafkaClient, make(config))

  static readonly layer = Layer.effect(
    KafkaClient,
    AppConfig.use(({ kafka }) => make(kafka)),
  )
}
