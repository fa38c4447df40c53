/**
 * Where a replay's processor writes: the service's own producer and sinks, each wrapped so that every message written for a replayed record carries the record's original
 * source coordinates and the replay headers (Headers.ts), and so that the replay sees what each
 * record became (Capture.ts). A dry run gets sinks and a producer that write nothing and take
 * exactly what the live ones would.
 */
import { Effect } from "effect"
import type { Message } from "kafkajs"
import type { ProducerShape } from "../Kafka/Producer.js"
import type { MongoDbShape } from "../Mongo/MongoDb.js"
import type { SinkFactories, StageError } from "../Pipeline/PipelineDag.js"
import { liveSinks } from "../Pipeline/PipelineDag.js"
import type { Sink } from "../Pipeline/Sinks.js"
import type { Capture } from "./Capture.js"
import { positionIn, type ReplayStamp, stamp } from "./Headers.js"

/** The stamp of every dead letter being replayed, by `<partition>/<offset>`. */
export type Stamps = Map<string, ReplayStamp>

const stampAll = (stamps: Stamps, messages: ReadonlyArray<Message>): ReadonlyArray<Message> =>
  messages.map((m) => {
    const position = positionIn(m)
    const s = position === undefined ? undefined : stamps.get(position)
    return s === undefined ? m : stamp(m, s)
  })

/**
 * `inner`, stamping what it sends and telling `capture` of the dead letters; with no `inner`
 * (a dry run) nothing is sent.
 */
export const replayProducer = (
  options: {
    readonly dlqTopic: string
    readonly stamps: Stamps
    readonly capture: Capture
    readonly maxMessageBytes: (topic: string) => number
  },
  inner?: ProducerShape,
): ProducerShape => ({
  maxMessageBytes: options.maxMessageBytes,
  send: (topic, messages, compression) =>
    Effect.suspend(() => {
      const stamped = stampAll(options.stamps, messages)
      const sent = inner === undefined ? Effect.void : inner.send(topic, stamped, compression)
      // Told before the stamp: the pipeline's coordinates say which dead letter each one replays.
      return topic === options.dlqTopic
        ? Effect.tap(sent, () => Effect.sync(() => options.capture.deadLettersSent(messages)))
        : sent
    }),
})

type AnySink = Sink<StageError>

/** A sink whose writes the replay sees: live, they go on as they are; dry, nothing is written. */
const seen = (sink: AnySink, capture: Capture, dry: boolean): AnySink => ({
  ...sink,
  // A dry run deletes nothing either.
  ...(dry && sink.remove !== undefined ? { remove: () => Effect.void } : {}),
  write: (records, origin, via) => {
    const written = dry
      ? Effect.succeed({ written: records.length, rejected: [] })
      : sink.write(records, origin, via)
    return Effect.tap(written, (outcome) =>
      Effect.sync(() => {
        const rejected = new Set(outcome.rejected.map((r) => r.record))
        capture.sinkWrote(
          origin.partition,
          records.filter((k) => !rejected.has(k.record)).map((k) => k.record),
        )
      }),
    )
  },
})

/** The service's sinks (liveSinks), seen by `capture`; a dry run's check records as the live ones do and write nothing. */
export const replaySinks = (options: {
  readonly mongo: MongoDbShape
  readonly producer: ProducerShape
  readonly sinkTopic: string
  readonly capture: Capture
  readonly dry: boolean
}): SinkFactories => {
  const live = liveSinks(options.mongo, options.producer, options.sinkTopic)
  return {
    mongodb_sink: (name, settings) => seen(live.mongodb_sink(name, settings), options.capture, options.dry),
    kafka_sink: (name, settings) => seen(live.kafka_sink(name, settings), options.capture, options.dry),
  }
}
