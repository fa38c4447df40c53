/**
 * The replay of one span of the dead-letter topic: each dead letter is passed over or chosen
 * (Selection.ts); the chosen ones, given their original bytes and headers back, go through the
 * service's own processor as one batch, built with the current pipeline and settings, whose
 * writes are stamped with each record's original source position and the replay headers
 * (Outputs.ts); what each became goes into the tally (Report.ts).
 */
import { Effect } from "effect"
import type { KafkaMessage } from "kafkajs"
import type { AppSettings } from "../Config/AppConfig.js"
import type { PipelineSpec } from "../Config/PipelineSpec.js"
import type { SourcePosition } from "../Domain/Record.js"
import type { Batch, BatchAbandoned } from "../Kafka/KafkaSource.js"
import type { ProducerShape } from "../Kafka/Producer.js"
import type { TransactionsShape } from "../Kafka/Transactions.js"
import type { MongoDbShape } from "../Mongo/MongoDb.js"
import { StatusFeed, type StatusFeedShape } from "../Observability/Status/Status.js"
import { WriteLanes } from "../Pipeline/Lanes.js"
import { buildPlan } from "../Pipeline/PipelineDag.js"
import { makeProcessor } from "../Pipeline/Processor.js"
import { PartitionStalls } from "../Pipeline/Stalls.js"
import { Capture, positionOf } from "./Capture.js"
import { type DeadLetterInfo, originalOf } from "./Headers.js"
import type { ReplayOptions } from "./Options.js"
import { replayProducer, replaySinks, replayTransactions, type Stamps } from "./Outputs.js"
import type { Span } from "./Reader.js"
import { Tally } from "./Report.js"
import { decide } from "./Selection.js"

/** Where the replay writes: the service's MongoDB and producer, and its transactions with exactly_once. */
export interface Writers {
  readonly mongo: MongoDbShape
  readonly producer: ProducerShape
  readonly transactions: TransactionsShape | undefined
}

interface Chosen {
  readonly message: KafkaMessage
  readonly info: DeadLetterInfo
  readonly position: string
}

export const makeReplayer = (
  settings: AppSettings,
  spec: PipelineSpec,
  options: ReplayOptions,
  fingerprint: string,
  writers: Writers,
) =>
  Effect.gen(function* () {
    const capture = new Capture()
    const stamps: Stamps = new Map()
    const sources = new WeakMap<KafkaMessage, SourcePosition>()
    const wrap = (inner?: ProducerShape) =>
      replayProducer(
        {
          dlqTopic: settings.kafka.topicDlq,
          stamps,
          capture,
          maxMessageBytes: writers.producer.maxMessageBytes,
        },
        inner,
      )
    const writer = wrap(options.dryRun ? undefined : writers.producer)
    const transactions =
      writers.transactions === undefined || options.dryRun
        ? undefined
        : replayTransactions(writers.transactions, wrap)
    const plan = yield* buildPlan(
      spec,
      replaySinks({
        mongo: writers.mongo,
        producer: writer,
        sinkTopic: settings.kafka.topicSink,
        capture,
        dry: options.dryRun,
      }),
      settings.pipeline,
    )
    // No saved duplicate windows: the service's hold the replayed records' own keys. The replay's
    // duplicate checks compare the replayed records with one another.
    const processor = makeProcessor(
      plan,
      writer,
      {
        pipeline: settings.pipeline,
        maxMessageBytes: settings.kafka.maxMessageBytes,
        dlqTopic: settings.kafka.topicDlq,
        sourceOf: (message) => sources.get(message),
      },
      new PartitionStalls(),
      new WriteLanes(),
      transactions,
    )
    const tally = new Tally(options.topic, options.examples)
    const selection = { ...options, fingerprint }
    const sequences = new Map<number, number>()

    const handle = (span: Span): Effect.Effect<void, BatchAbandoned> => {
      const chosen: Array<Chosen> = []
      const originals: Array<KafkaMessage> = []
      return Effect.gen(function* () {
        for (const message of span.messages) {
          const decision = decide(selection, message)
          if (decision._tag === "PassedOver") {
            tally.passOver(decision.why, decision.info.stage, decision.info.reasons)
            continue
          }
          const info = decision.info
          const original = originalOf(message, info)
          if (info.source !== undefined) sources.set(original, info.source)
          const position = positionOf(span.partition, message.offset)
          stamps.set(position, {
            source: info.source,
            count: info.replays + 1,
            from: `${options.topic}/${span.partition}/${message.offset}`,
            pipeline: fingerprint,
          })
          chosen.push({ message, info, position })
          originals.push(original)
        }
        // exactly_once: a batch with nothing to replay still commits the group's offset in its transaction.
        if (chosen.length === 0 && transactions === undefined) return
        const sequence = (sequences.get(span.partition) ?? 0) + 1
        sequences.set(span.partition, sequence)
        const batch: Batch = {
          topic: options.topic,
          partition: span.partition,
          messages: originals,
          firstOffset: span.firstOffset,
          lastOffset: span.lastOffset,
          highWatermark: span.highWatermark,
          sequence,
          // One batch of a partition at a time: each starts once the one before it is settled.
          startsFetch: true,
          generation: span.generation,
        }
        const feed: StatusFeedShape = {
          tasksRan: () => undefined,
          taskCounted: (_task, _stats, output) => capture.transformed(span.partition, output),
          batchWritten: () => undefined,
        }
        const summary = yield* processor.handle(batch).pipe(Effect.provideService(StatusFeed, feed))
        tally.batch(chosen.length, summary)
        for (const c of chosen)
          tally.record(c.message, span.partition, c.info, capture.outcomeOf(c.position), {
            turnedAway: capture.turnedAway(c.position),
            written: capture.writtenValue(c.position),
          })
      }).pipe(
        Effect.ensuring(
          Effect.sync(() => {
            const positions = chosen.map((c) => c.position)
            for (const p of positions) stamps.delete(p)
            capture.forget(positions)
          }),
        ),
      )
    }

    return { handle, tally }
  })
