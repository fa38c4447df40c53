/** The in-memory stand-in for src/Kafka/KafkaAdmin.ts: the log's end offsets and the group's commits. */
import type { OffsetsAdmin } from "../../../src/Kafka/KafkaAdmin.js"
import type { State } from "./State.js"

export const memoryAdmin = (state: State): OffsetsAdmin => ({
  connect: async () => undefined,
  fetchTopicOffsets: async () =>
    [...state.log].map(([partition, messages]) => ({
      partition,
      offset: String(messages.length),
      high: String(messages.length),
      low: "0",
    })),
  fetchOffsets: async ({ topics }) =>
    (topics ?? []).map((topic) => ({
      topic,
      partitions: [...state.committed].map(([partition, offset]) => ({
        partition,
        offset: String(offset),
        metadata: null,
      })),
    })),
})
