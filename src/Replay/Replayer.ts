/**
 * The replay of one span of the dead-letter topic: each dead letter is passed over or chosen
 * (Selection.ts); the chosen ones, given their original bytes and headers back, go through the
 * service's own processor as one batch, built with the current pipeline and settings, whose
 * writes are stamped with each record's original source position and the replay headers
 * (Outputs.ts); each is then entered in the ledger (Ledger.ts: in the batch's transaction with
 * exactly_once), and what it became goes into the tally (Report.ts).
 *
 * The group's offset of a partition, committed after each span, never passes a dead letter that
 * --reason/--key left out, nor offsets this run did not read (a --from past the group's
 * position): those stay for a later replay. The dead letters replayed after that point are read
 * again by the next run and passed over, since the ledger has them.
 */
import { Duration, Effect, Schedule } from "effect"
import type { KafkaMessage, Message } from "kafkajs"
import type { AppSettings } from "../Config/AppConfig.js"
import type { PipelineSpec } from "../Config/PipelineSpec.js"
import type { SourcePosition } from "../Domain/Record.js"
import type { KafkaProduceError } from "../Kafka/Errors.js"
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
import { ledgerEntry } from "./Ledger.js"
import type { ReplayOptions } from "./Options.js"
import { replayProducer, replaySinks, type Stamps } from "./Outputs.js"
import type { Span } from "./Reader.js"
import { Tally } from "./Report.js"
import { decide } from "./Selection.js"

/** Where the replay writes: the service's MongoDB and producer, and its transactions with exactly_once. */
export interface Writers {
  readonly mongo: MongoDbShape
  readonly producer: ProducerShape
  readonly transactions: TransactionsShape | undefined
}

/** What the replay knows before it reads. */
export interface Memory {
  /** The ledger's topic. */
  readonly ledger: string
  /** The dead letters it has, as `<partition>/<offset>`. */
  readonly replayed: ReadonlySet<string>
  /** Per partition, the group's offset when this run does not begin reading there (a --from past it). */
  readonly holdAt: ReadonlyMap<number, bigint>
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
  memory: Memory,
) =>
  Effect.gen(function* () {
    const capture = new Capture()
    const stamps: Stamps = new Map()
    const sources = new WeakMap<KafkaMessage, SourcePosition>()
    // Per partition: the offset its group's offset stays at for the rest of this run.
    const holdAt = new Map(memory.holdAt)
    // Per partition: the ledger's messages for the batch in hand, once it is written.
    const entriesFor = new Map<number, () => ReadonlyArray<Message>>()
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
    const committable = (partition: number, next: bigint) => {
      const held = holdAt.get(partition)
      return held !== undefined && held < next ? held : next
    }
    const tx = options.dryRun ? undefined : writers.transactions
    // exactly_once: the batch's ledger entries go in its transaction, after its writes; the group's
    // offset it commits stays where it is held.
    const transactions: TransactionsShape | undefined =
      tx === undefined
        ? undefined
        : {
            fence: tx.fence,
            forget: tx.forget,
            transact: (partition, next, work) =>
              tx.transact(partition, committable(partition, BigInt(next)).toString(), (via) =>
                Effect.flatMap(work(wrap(via)), (value) =>
                  Effect.as(via.send(memory.ledger, entriesFor.get(partition)?.() ?? []), value),
                ),
              ),
          }
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
        parsing: {
          onTombstone: settings.mongodb.onTombstone,
          maxKeyBytes: settings.pipeline.maxKeyBytes,
          format: settings.pipeline.sourceFormat,
        },
        dlqTopic: settings.kafka.topicDlq,
        sourceOf: (message) => sources.get(message),
      },
      new PartitionStalls(),
      new WriteLanes(),
      transactions,
    )
    const tally = new Tally(options.topic, options.examples)
    const selection = { ...options, fingerprint, replayed: memory.replayed }
    const sequences = new Map<number, number>()
    // The ledger's sends after the batch (at least once) are retried as the service retries.
    const retry = Schedule.exponential(Duration.max(settings.pipeline.retryDelay, Duration.millis(100))).pipe(
      Schedule.upTo({ times: Math.max(1, settings.pipeline.retryCount) }),
    )

    /** Replays the span; the offset its partition's group may commit now. */
    const handle = (span: Span): Effect.Effect<bigint, BatchAbandoned | KafkaProduceError> => {
      const chosen: Array<Chosen> = []
      const originals: Array<KafkaMessage> = []
      return Effect.gen(function* () {
        for (const message of span.messages) {
          const position = positionOf(span.partition, message.offset)
          const decision = decide(selection, message, position)
          if (decision._tag === "PassedOver") {
            tally.passOver(decision.why, decision.info.stage, decision.info.reasons)
            if (decision.why === "not_selected" && !holdAt.has(span.partition))
              holdAt.set(span.partition, BigInt(message.offset))
            continue
          }
          const info = decision.info
          const original = originalOf(message, info)
          if (info.source !== undefined) sources.set(original, info.source)
          stamps.set(position, {
            source: info.source,
            count: info.replays + 1,
            from: `${options.topic}/${span.partition}/${message.offset}`,
            pipeline: fingerprint,
          })
          chosen.push({ message, info, position })
          originals.push(original)
        }
        const next = committable(span.partition, BigInt(span.lastOffset) + 1n)
        // exactly_once: a batch with nothing to replay still commits the group's offset in its transaction.
        if (chosen.length === 0 && transactions === undefined) return next
        const at = new Date()
        const entries = () =>
          chosen.map((c) =>
            ledgerEntry(c.position, {
              outcome: capture.outcomeOf(c.position),
              group: options.group,
              pipeline: fingerprint,
              at,
            }),
          )
        entriesFor.set(span.partition, entries)
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
          afterSettled: true,
          generation: span.generation,
        }
        const feed: StatusFeedShape = {
          tasksRan: () => undefined,
          taskCounted: (_task, _stats, output) => capture.transformed(span.partition, output),
          batchWritten: () => undefined,
        }
        const summary = yield* processor.handle(batch).pipe(Effect.provideService(StatusFeed, feed))
        if (!options.dryRun && transactions === undefined && chosen.length > 0)
          yield* Effect.retry(writers.producer.send(memory.ledger, entries()), {
            schedule: retry,
            while: (e) => e.kind === "transient" || e.kind === "unknown",
          })
        tally.batch(chosen.length, summary)
        for (const c of chosen)
          tally.record(c.message, span.partition, c.info, capture.outcomeOf(c.position), {
            turnedAway: capture.turnedAway(c.position),
            written: capture.writtenValue(c.position),
          })
        return next
      }).pipe(
        Effect.ensuring(
          Effect.sync(() => {
            entriesFor.delete(span.partition)
            const positions = chosen.map((c) => c.position)
            for (const p of positions) stamps.delete(p)
            capture.forget(positions)
          }),
        ),
      )
    }

    return { handle, tally }
  })
