/** The in-memory stand-in for src/Kafka/Producer.ts: every message sent, by topic; a topic can be down. */
import { Effect } from "effect"
import { KafkaProducer } from "../../../src/Kafka/Producer.js"
import { type State, transient } from "./State.js"

export const memoryProducer = (state: State) =>
  KafkaProducer.of({
    send: (topic, messages) =>
      Effect.suspend(() => {
        const failure = state.failingTopics.get(topic)
        if (failure !== undefined) return Effect.fail(transient(topic, messages.length))
        for (const message of messages) state.sent.push({ topic, message })
        return Effect.void
      }),
    maxMessageBytes: () => 1_048_588,
  })
