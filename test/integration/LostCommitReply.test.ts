/**
 * KAFKA__DELIVERY=exactly_once when a commit's outcome is unknown, against the real broker and
 * FerretDB: the broker commits the batch's transaction but its answer never arrives (a wrapper
 * around the instance's transactions reports a transient failure after the real commit). The
 * batch is not simply sent again: the partition is fenced anew, the committed offset read back
 * says the transaction went in, and a read_committed reader sees every record once.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import type { KafkaMessage } from "kafkajs"
import { AppConfig } from "../../src/Config/AppConfig.js"
import { loadPipelineFile } from "../../src/Config/PipelineFile.js"
import { defaultRecordOptions, encode, generate } from "../../src/Generator/Records.js"
import { KafkaProduceError } from "../../src/Kafka/Errors.js"
import { KafkaAdmin } from "../../src/Kafka/KafkaAdmin.js"
import { KafkaClient } from "../../src/Kafka/KafkaClient.js"
import type { Batch } from "../../src/Kafka/KafkaSource.js"
import { KafkaProducer } from "../../src/Kafka/Producer.js"
import { KafkaTransactions, type TransactionsShape } from "../../src/Kafka/Transactions.js"
import { MongoDb } from "../../src/Mongo/MongoDb.js"
import { WriteLanes } from "../../src/Pipeline/Lanes.js"
import { buildPlan, liveSinks } from "../../src/Pipeline/PipelineDag.js"
import { makeProcessor } from "../../src/Pipeline/Processor.js"
import { PartitionStalls } from "../../src/Pipeline/Stalls.js"
import {
  committedOffsets,
  createTopic,
  dropDatabase,
  freshNames,
  mongoIds,
  produce,
  readCommitted,
  serviceEnv,
} from "./support/Service.js"

describe("exactly-once when a commit's answer is lost", () => {
  it.live(
    "the fence and the committed offset say the transaction went in: the batch is not sent twice",
    () => {
      const names = freshNames("lostreply")
      // The delivery setting is what this test is about; every other setting is the default.
      const env = serviceEnv(names, { KAFKA__DELIVERY: "exactly_once" })
      const instance = KafkaTransactions.layer.pipe(
        Layer.provideMerge(KafkaProducer.layer),
        Layer.provideMerge(KafkaAdmin.layer),
        Layer.provideMerge(KafkaClient.layer),
        Layer.provideMerge(MongoDb.layer),
        Layer.provideMerge(AppConfig.layerFrom(env)),
      )
      const records = [
        ...generate({ ...defaultRecordOptions, seed: 31, pattern: "valid", duplicateRatio: 0 }, 0, 40),
      ]
      return Effect.gen(function* () {
        yield* Effect.promise(() => createTopic(names.source, 1))
        yield* Effect.promise(() => createTopic(names.sink, 1))
        yield* Effect.promise(() => createTopic(names.dlq, 1))
        yield* Effect.promise(() => produce(names.source, records))
        const context = yield* Layer.build(instance)
        const settings = Context.get(context, AppConfig)
        const producer = Context.get(context, KafkaProducer)
        const mongo = Context.get(context, MongoDb)
        const real = Context.get(context, KafkaTransactions)

        // Every transaction goes to the broker; the first one's answer is "lost" after it committed.
        let transactions = 0
        const lossy: TransactionsShape = {
          ...real,
          transact: (partition, next, work) =>
            real.transact(partition, next, work).pipe(
              Effect.flatMap((value) =>
                transactions++ === 0
                  ? Effect.fail(
                      new KafkaProduceError({
                        topic: names.sink,
                        messages: 0,
                        kind: "transient",
                        cause: new Error("the answer to the transaction's commit was lost"),
                      }),
                    )
                  : Effect.succeed(value),
              ),
            ),
        }
        const spec = yield* loadPipelineFile("config/pipeline.yaml")
        const plan = yield* buildPlan(spec, liveSinks(mongo, producer, names.sink), settings.pipeline)
        const processor = makeProcessor(
          plan,
          producer,
          {
            pipeline: settings.pipeline,
            maxMessageBytes: settings.kafka.maxMessageBytes,
            dlqTopic: names.dlq,
            windows: { store: mongo.windows, group: names.group },
          },
          new PartitionStalls(),
          new WriteLanes(),
          lossy,
        )
        const messages: Array<KafkaMessage> = records.map((r, i) => ({
          key: Buffer.from(r.key!),
          value: encode(r),
          timestamp: String(Date.now()),
          attributes: 0,
          offset: String(i),
          headers: {},
        }))
        const batch: Batch = {
          topic: names.source,
          partition: 0,
          messages,
          firstOffset: "0",
          lastOffset: String(records.length - 1),
          highWatermark: String(records.length),
          sequence: 1,
          afterSettled: true,
          generation: 1,
        }
        const summary = yield* processor.handle(batch)
        assert.strictEqual(summary.valid, records.length)
        assert.strictEqual(
          transactions,
          1,
          "one transaction: after the lost answer the fence showed it committed",
        )

        const keys = (yield* Effect.promise(() => readCommitted(names.sink))).map((m) => m.key!).sort()
        assert.deepStrictEqual(keys, records.map((r) => r.key!).sort(), "every record once on the sink topic")
        const committed = yield* Effect.promise(() => committedOffsets(names.group, names.source))
        assert.strictEqual(committed.get(0), records.length)
        assert.strictEqual((yield* Effect.promise(() => mongoIds(names.database))).length, records.length)
      }).pipe(
        Effect.scoped,
        Effect.ensuring(Effect.promise(() => dropDatabase(names.database).catch(() => undefined))),
      )
    },
    120_000,
  )
})
