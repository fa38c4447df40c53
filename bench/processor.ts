/**
 * CPU time per record of the batch processor in-process: `makeProcessor` with the shipped
 * pipeline (config/pipeline.yaml), the real sinks and the status page's feed, over a MongoDB
 * and a producer that do nothing (the producer only cuts each send into requests, as the real
 * one does), so the figure is the pipeline's own code without its clients: parse, the DAG,
 * admission, the sink and dead-letter messages, classification, metrics. Batches of 500 of
 * the generator's mixed stream without duplicates (10% invalid), a fresh range of records
 * every round; each round is timed by process.cpuUsage, and the first round (warm-up) is left
 * out of the median. Run with `npx node --import tsx bench/processor.ts [records-per-round] [rounds]`.
 */
import { Effect } from "effect"
import type { KafkaMessage } from "kafkajs"
import { decodeSettings } from "../src/Config/AppConfig.js"
import { loadPipelineFile } from "../src/Config/PipelineFile.js"
import { defaultRecordOptions, encode, generate } from "../src/Generator/Records.js"
import type { Batch } from "../src/Kafka/KafkaSource.js"
import { batchOverheadBytes, type ProducerShape, requestsOf } from "../src/Kafka/Producer.js"
import type { MongoDbShape } from "../src/Mongo/MongoDb.js"
import * as Status from "../src/Observability/Status/Status.js"
import { buildPlan, liveSinks } from "../src/Pipeline/PipelineDag.js"
import { makeProcessor } from "../src/Pipeline/Processor.js"

const perRound = Number(process.argv[2] ?? 30_000)
const rounds = Number(process.argv[3] ?? 6)
const batchSize = 500
const maxMessageBytes = 1_048_588
const options = { ...defaultRecordOptions, duplicateRatio: 0 }

const batchesOf = (first: number, count: number): ReadonlyArray<Batch> => {
  const records = [...generate(options, first, count)]
  const batches: Batch[] = []
  for (let i = 0; i < records.length; i += batchSize) {
    const messages: KafkaMessage[] = records.slice(i, i + batchSize).map((r, j) => ({
      key: r.key === null ? null : Buffer.from(r.key),
      value: encode(r),
      timestamp: "1700000000000",
      attributes: 0,
      offset: String(first + i + j),
      headers: {},
    }))
    batches.push({
      topic: "orders",
      partition: 0,
      messages,
      firstOffset: messages[0]!.offset,
      lastOffset: messages[messages.length - 1]!.offset,
      highWatermark: "0",
      sequence: batches.length + 1,
      afterSettled: true,
      generation: 1,
    })
  }
  return batches
}

const main = Effect.gen(function* () {
  const settings = yield* decodeSettings({
    KAFKA__BOOTSTRAP_SERVERS: "127.0.0.1:9092",
    KAFKA__TOPIC_SOURCE: "orders",
    KAFKA__TOPIC_SINK: "orders.clean",
    KAFKA__CONSUMER_GROUP: "bench",
    MONGODB__CONNECTION_STRING: "mongodb://127.0.0.1:27017/",
    MONGODB__DATABASE: "bench",
    MONGODB__COLLECTION: "orders",
  })
  const status = yield* Status.make(settings)
  const mongo = {
    upsert: () => Effect.succeed({ refused: [], stale: [], skipped: [] }),
    remove: () => Effect.succeed({ deleted: 0, stale: [] }),
    writeModel: "replace",
    onExisting: "skip",
  } as unknown as MongoDbShape
  const producer: ProducerShape = {
    maxMessageBytes: () => maxMessageBytes,
    send: (_topic, messages) =>
      Effect.sync(() => void requestsOf(messages, maxMessageBytes - batchOverheadBytes)),
  }
  const spec = yield* loadPipelineFile("config/pipeline.yaml")
  const plan = yield* buildPlan(spec, liveSinks(mongo, producer, "orders.clean"), settings.pipeline)
  const processor = makeProcessor(plan, producer, {
    pipeline: settings.pipeline,
    maxMessageBytes: settings.kafka.maxMessageBytes,
    dlqTopic: "orders.dlq",
  })
  const perRecord: number[] = []
  for (let round = 0; round < rounds; round++) {
    const batches = batchesOf(round * perRound, perRound)
    const handled = Effect.forEach(batches, processor.handle, { discard: true })
    const before = process.cpuUsage()
    yield* Effect.provideService(handled, Status.StatusFeed, status.feed)
    const used = process.cpuUsage(before)
    perRecord.push((used.user + used.system) / perRound)
  }
  const measured = perRecord.slice(1).sort((a, b) => a - b)
  console.log(
    `processor: ${measured[Math.floor(measured.length / 2)]!.toFixed(2)} µs of CPU per record (median of rounds 2-${rounds}; every round: ${perRecord.map((n) => n.toFixed(1)).join(", ")})`,
  )
}).pipe(Effect.scoped)

Effect.runPromise(main).then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e)
    process.exit(1)
  },
)
