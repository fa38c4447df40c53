/**
 * Makes sure the source, sink and dead-letter topics exist before the pipeline starts
 * (KAFKA__CREATE_TOPICS, on by default). New topics get the broker's default partition
 * count and replication factor, so the same code works on a local broker and on a cluster.
 */
import { Effect, Result } from "effect"
import type { ConfigResourceTypes } from "kafkajs"
import { AppConfig } from "../Config/AppConfig.js"
import { KafkaConnectionError, KafkaTopicError } from "./Errors.js"
import { KafkaClient } from "./KafkaClient.js"

/** Creates those of `topics` the broker does not have yet, and waits for their leaders. */
export const createMissingTopics = (topics: ReadonlyArray<string>, brokers: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const client = yield* KafkaClient
    const wanted = [...new Set(topics)]
    const admin = client.admin()
    yield* Effect.acquireUseRelease(
      Effect.tryPromise({
        try: () => admin.connect(),
        catch: (cause) => new KafkaConnectionError({ client: "admin", brokers: brokers.join(","), cause }),
      }),
      () =>
        Effect.tryPromise({
          try: async () => {
            const existing = new Set(await admin.listTopics())
            const missing = wanted.filter((t) => !existing.has(t))
            if (missing.length > 0) {
              await admin.createTopics({ topics: missing.map((topic) => ({ topic })), waitForLeaders: true })
            }
            return missing
          },
          catch: (cause) => new KafkaTopicError({ topics: wanted, cause }),
        }).pipe(
          Effect.tap((created) =>
            created.length > 0 ? Effect.logInfo(`created topic(s) ${created.join(", ")}`) : Effect.void,
          ),
        ),
      () => Effect.promise(() => admin.disconnect().catch(() => undefined)),
    )
  }).pipe(Effect.withSpan("Kafka.createMissingTopics"))

export const ensureTopics = Effect.gen(function* () {
  const { kafka } = yield* AppConfig
  if (!kafka.createTopics) return
  yield* createMissingTopics([kafka.topicSource, kafka.topicSink, kafka.topicDlq], kafka.brokers)
}).pipe(Effect.withSpan("Kafka.ensureTopics"))

/** What a topic accepts in one record batch when the broker and the topic set nothing else (Kafka's default). */
export const defaultMaxMessageBytes = 1_048_588

/**
 * Each topic's `max.message.bytes` as the broker reports it (the topic's own setting, or the
 * broker's default). A topic the broker will not describe gets Kafka's default, with a warning.
 */
export const readMaxMessageBytes = (topics: ReadonlyArray<string>, brokers: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const client = yield* KafkaClient
    const admin = client.admin()
    const described = yield* Effect.acquireUseRelease(
      Effect.tryPromise({
        try: () => admin.connect(),
        catch: (cause) => new KafkaConnectionError({ client: "admin", brokers: brokers.join(","), cause }),
      }),
      () =>
        Effect.tryPromise({
          try: () =>
            admin.describeConfigs({
              includeSynonyms: false,
              resources: [...new Set(topics)].map((name) => ({
                // ConfigResourceTypes.TOPIC: kafkajs exports the enum from CommonJS only.
                type: 2 as ConfigResourceTypes,
                name,
                configNames: ["max.message.bytes"],
              })),
            }),
          catch: (cause) => new KafkaTopicError({ topics, cause }),
        }).pipe(Effect.timeout("30 seconds"), Effect.result),
      () => Effect.promise(() => admin.disconnect().catch(() => undefined)),
    )
    const limits = new Map<string, number>()
    if (Result.isSuccess(described)) {
      for (const resource of described.success.resources) {
        const entry = resource.configEntries.find((e) => e.configName === "max.message.bytes")
        const value = Number(entry?.configValue)
        if (Number.isInteger(value) && value > 0) limits.set(resource.resourceName, value)
      }
    }
    for (const topic of topics) {
      if (!limits.has(topic)) {
        yield* Effect.logWarning(
          `could not read max.message.bytes of topic "${topic}"; assuming Kafka's default of ${defaultMaxMessageBytes}`,
        )
        limits.set(topic, defaultMaxMessageBytes)
      }
    }
    return limits as ReadonlyMap<string, number>
  }).pipe(Effect.withSpan("Kafka.readMaxMessageBytes"))
