/**
 * Makes sure the source, sink and dead-letter topics exist before the pipeline starts
 * (KAFKA__CREATE_TOPICS, on by default). New topics get the broker's default partition
 * count and replication factor, so the same code works on a local broker and on a cluster.
 */
import { Effect } from "effect"
import { AppConfig } from "../Config/AppConfig.js"
import { KafkaConnectionError, KafkaTopicError } from "./Errors.js"
import { KafkaClient } from "./KafkaClient.js"

export const ensureTopics = Effect.gen(function* () {
  const { kafka } = yield* AppConfig
  if (!kafka.createTopics) return
  const client = yield* KafkaClient
  const topics = [...new Set([kafka.topicSource, kafka.topicSink, kafka.topicDlq])]
  const admin = client.admin()
  yield* Effect.acquireUseRelease(
    Effect.tryPromise({
      try: () => admin.connect(),
      catch: (cause) =>
        new KafkaConnectionError({ client: "admin", brokers: kafka.brokers.join(","), cause }),
    }),
    () =>
      Effect.tryPromise({
        try: async () => {
          const existing = new Set(await admin.listTopics())
          const missing = topics.filter((t) => !existing.has(t))
          if (missing.length > 0) {
            await admin.createTopics({ topics: missing.map((topic) => ({ topic })), waitForLeaders: true })
          }
          return missing
        },
        catch: (cause) => new KafkaTopicError({ topics, cause }),
      }).pipe(
        Effect.tap((created) =>
          created.length > 0 ? Effect.logInfo(`created topic(s) ${created.join(", ")}`) : Effect.void,
        ),
      ),
    () => Effect.promise(() => admin.disconnect().catch(() => undefined)),
  )
}).pipe(Effect.withSpan("Kafka.ensureTopics"))
