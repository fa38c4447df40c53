/**
 * The two sinks as functions over a batch's records: the valid records, keyed by the
 * pipeline key, go to MongoDB (bulk upsert by key) and to the sink topic (keyed messages).
 * A sink reports the records it could not take (no key, or a data error from the server);
 * they go to the dead-letter topic with that reason. Whole-sink failures are errors, so the
 * executor retries them and the batch stalls rather than moving on.
 */
import { Effect } from "effect"
import type { WriteConcernSettings } from "mongodb"
import type { KafkaSinkSettings, MongoSinkSettings } from "../Config/PipelineSpec.js"
import { getPath, type Path, parsePath } from "../Domain/Path.js"
import { keyOf, type PipelineRecord, type Reason } from "../Domain/Record.js"
import type { KafkaProduceError } from "../Kafka/Errors.js"
import { type BatchOrigin, sinkMessage } from "../Kafka/Messages.js"
import type { ProducerShape } from "../Kafka/Producer.js"
import type { MongoWriteError } from "../Mongo/Errors.js"
import type { MongoDbShape } from "../Mongo/MongoDb.js"
import { upsertAll } from "../Mongo/MongoSink.js"

export interface SinkRejection {
  readonly record: PipelineRecord
  readonly reason: Reason
}

export interface SinkOutcome {
  readonly written: number
  readonly rejected: ReadonlyArray<SinkRejection>
}

export type Sink<Err> = (
  records: ReadonlyArray<PipelineRecord>,
  origin: BatchOrigin,
) => Effect.Effect<SinkOutcome, Err>

interface Keyed {
  readonly record: PipelineRecord
  readonly key: string
}

/** The valid records with their keys; a valid record without a key cannot be upserted or keyed. */
export const keyRecords = (
  sink: string,
  records: ReadonlyArray<PipelineRecord>,
  keyPaths: ReadonlyArray<Path>,
  keyNames: ReadonlyArray<string>,
): { readonly keyed: ReadonlyArray<Keyed>; readonly rejected: ReadonlyArray<SinkRejection> } => {
  const keyed: Keyed[] = []
  const rejected: SinkRejection[] = []
  for (const record of records) {
    if (record.status !== "valid") continue
    const key = record.key ?? keyOf(keyPaths.map((p) => getPath(record.value, p)))
    if (key === undefined) {
      rejected.push({
        record,
        reason: {
          task: sink,
          field: keyNames.join(","),
          rule: "key",
          message: `record has no key: ${keyNames.join(", ")} missing or null`,
        },
      })
    } else {
      keyed.push({ record, key })
    }
  }
  return { keyed, rejected }
}

export const writeConcernOf = (settings: MongoSinkSettings): WriteConcernSettings => ({
  w: settings.writeConcern,
  journal: settings.journal,
})

export const mongoSink = (
  name: string,
  mongo: MongoDbShape,
  keyFields: ReadonlyArray<string>,
  settings: MongoSinkSettings,
): Sink<MongoWriteError> => {
  const keyPaths = keyFields.map(parsePath)
  const writeConcern = writeConcernOf(settings)
  return (records) => {
    const { keyed, rejected } = keyRecords(name, records, keyPaths, keyFields)
    const documents = keyed.map(({ record, key }) => ({ id: key, document: record.value }))
    return upsertAll(mongo.collection, documents, writeConcern).pipe(
      Effect.map((rejections) => ({
        written: keyed.length - rejections.length,
        rejected: [
          ...rejected,
          ...rejections.map((r) => ({
            record: keyed[r.index]!.record,
            reason: {
              task: name,
              rule: r.code === undefined ? "document" : `mongodb_error_${r.code}`,
              message: r.message,
            },
          })),
        ],
      })),
    )
  }
}

export const kafkaSink = (
  name: string,
  producer: ProducerShape,
  topic: string,
  keyFields: ReadonlyArray<string>,
  settings: KafkaSinkSettings,
): Sink<KafkaProduceError> => {
  const keyPaths = keyFields.map(parsePath)
  return (records, origin) => {
    const { keyed, rejected } = keyRecords(name, records, keyPaths, keyFields)
    const messages = keyed.map(({ record, key }) => sinkMessage(origin, key, record.offset, record.value))
    return producer
      .send(topic, messages, settings.compression)
      .pipe(Effect.as({ written: keyed.length, rejected }))
  }
}
