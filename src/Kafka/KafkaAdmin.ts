/**
 * The admin client the service keeps for reading offsets (the consumer lag): one for the
 * service's lifetime, connected on first use, disconnected when the layer is torn down.
 */
import { Context, Effect, Layer } from "effect"
import type { Admin } from "kafkajs"
import { KafkaClient } from "./KafkaClient.js"

export type OffsetsAdmin = Pick<Admin, "connect" | "fetchTopicOffsets" | "fetchOffsets">

export class KafkaAdmin extends Context.Service<KafkaAdmin, OffsetsAdmin>()("pipeline/KafkaAdmin") {
  static readonly layer = Layer.effect(
    KafkaAdmin,
    Effect.gen(function* () {
      const client = yield* KafkaClient
      return yield* Effect.acquireRelease(
        Effect.sync(() => client.admin()),
        (admin) =>
          Effect.promise(() => admin.disconnect().catch(() => undefined)).pipe(
            Effect.timeoutOption("10 seconds"),
          ),
      )
    }),
  )
}
