/**
 * The sink producer's queue, against the real broker: sends to one topic that wait for the
 * request in flight go together in the next one, every message lands once and in its send's
 * order, and a request that fails for one send's record is sent again send by send, so that only
 * that send fails.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Layer } from "effect"
import type { Kafka, Message, ProducerConfig } from "kafkajs"
import { AppConfig } from "../../src/Config/AppConfig.js"
import { KafkaClient } from "../../src/Kafka/KafkaClient.js"
import { KafkaProducer } from "../../src/Kafka/Producer.js"
import { createTopic, freshNames, kafka, readTopic, serviceEnv } from "./support/Service.js"

/** A producer layer over the real client, counting the Produce requests of its producers. */
const counted = (names: ReturnType<typeof freshNames>) => {
  const requests = { produce: 0 }
  const counting: Kafka = Object.assign(Object.create(kafka) as Kafka, {
    producer: (config?: ProducerConfig) => {
      const p = kafka.producer(config)
      p.on(p.events.REQUEST, (e) => {
        if (e.payload.apiName === "Produce") requests.produce++
      })
      return p
    },
  })
  const layer = KafkaProducer.layer.pipe(
    Layer.provideMerge(Layer.succeed(KafkaClient, counting)),
    Layer.provideMerge(AppConfig.layerFrom(serviceEnv(names))),
  )
  return { requests, layer }
}

/** Every send at once; how each ended. */
const sendAll = (
  layer: ReturnType<typeof counted>["layer"],
  topic: string,
  sends: ReadonlyArray<ReadonlyArray<Message>>,
) =>
  Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const producer = yield* KafkaProducer
        return yield* Effect.forEach(sends, (messages) => Effect.exit(producer.send(topic, messages)), {
          concurrency: "unbounded",
        })
      }),
    ).pipe(Effect.provide(layer)),
  )

const goodSends = Array.from({ length: 20 }, (_, i) =>
  Array.from({ length: 10 }, (_, j): Message => ({ key: `k${i}-${j}`, value: `${i}:${j}` })),
)

/** The values of the topic, each send's in the order it sent them. */
const assertLanded = async (topic: string) => {
  const values = (await readTopic(topic)).map((m) => m.value?.toString("utf8") ?? "")
  assert.strictEqual(values.length, 200, "every good message once")
  for (let i = 0; i < goodSends.length; i++)
    assert.deepStrictEqual(
      values.filter((v) => v.startsWith(`${i}:`)),
      Array.from({ length: 10 }, (_, j) => `${i}:${j}`),
      `send ${i}'s messages in order`,
    )
}

describe("the producer's queue", () => {
  it("sends to one topic that wait for the request in flight go together in the next; all land once, in order", async () => {
    const names = freshNames("producer-queue")
    await createTopic(names.sink, 1)
    const { requests, layer } = counted(names)
    const exits = await sendAll(layer, names.sink, goodSends)
    for (const exit of exits) assert.isTrue(Exit.isSuccess(exit))
    // The first goes alone; the 19 that waited for it go in as few requests as their bytes need.
    assert.isAtMost(requests.produce, 3, `${requests.produce} Produce requests for ${goodSends.length} sends`)
    await assertLanded(names.sink)
  })

  it("a request that fails for one send's record is sent again send by send: only that send fails", async () => {
    const names = freshNames("producer-queue-bad")
    // Compacted: the broker refuses a message without a key (INVALID_RECORD), a record's fault.
    await createTopic(names.sink, 1, { "cleanup.policy": "compact" })
    const { layer } = counted(names)
    const bad: Message[] = [{ key: null, value: "no key" }]
    const sends = [...goodSends.slice(0, 10), bad, ...goodSends.slice(10)]
    const exits = await sendAll(layer, names.sink, sends)
    exits.forEach((exit, i) => {
      if (sends[i] === bad) {
        assert.isTrue(Exit.isFailure(exit), "the send without a key fails")
        assert.include(
          Exit.isFailure(exit) ? JSON.stringify(exit.cause) : "",
          "record",
          "as a record's fault",
        )
      } else assert.isTrue(Exit.isSuccess(exit), `send ${i} succeeds`)
    })
    await assertLanded(names.sink)
  })
})
