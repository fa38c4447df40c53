/**
 * The two sinks over a batch's admitted records (valid, keyed, and within every sink's limits:
 * see Admission.ts): MongoDB (bulk upsert by key) and the sink topic (keyed messages). Each
 * sink says what it can never take (`refuses`), so that a record one sink refuses reaches
 * neither; and reports the records the server turned away with a data error while writing.
 * Whole-write failures are errors whose kind (Domain/ErrorKind.ts) decides what follows.
 */
import { Effect, Metric } from "effect"
import type { Message } from "kafkajs"
import { BSON, type WriteConcernSettings } from "mongodb"
import type { KafkaSinkSettings, MongoSinkSettings, SinkType } from "../Config/SinkKinds.js"
import { getPath, type Path, parsePath } from "../Domain/Path.js"
import {
  defaultMaxKeyBytes,
  describeKeyProblem,
  keyOf,
  type PipelineRecord,
  type Reason,
  type SourcePosition,
} from "../Domain/Record.js"
import { parseTimestamp } from "../Domain/Timestamp.js"
import type { KafkaProduceError } from "../Kafka/Errors.js"
import { encodedSize, headersSize } from "../Kafka/MessageSize.js"
import { batchOverheadBytes, type ProducerShape } from "../Kafka/Producer.js"
import type { MongoWriteError } from "../Mongo/Errors.js"
import type { MongoDbShape } from "../Mongo/MongoDb.js"
import { maxDocumentBytes, positionField, type SinkDocument, type StaleDocument } from "../Mongo/MongoSink.js"
import * as Metrics from "../Observability/Metrics.js"
import { type BatchOrigin, sinkMessage, tombstoneMessage } from "./Messages.js"
import type { Tombstone } from "./Parse.js"

/** Where a record was turned away, as the dead-letter headers name it: the sink's type. */
export type SinkStage = SinkType

/** A valid record with its key, as the sinks take it. */
export interface Keyed {
  readonly record: PipelineRecord
  readonly key: string
}

export interface SinkRejection {
  readonly record: PipelineRecord
  readonly reason: Reason
}

export interface SinkOutcome {
  readonly written: number
  readonly rejected: ReadonlyArray<SinkRejection>
}

export interface Sink<Err> {
  readonly name: string
  readonly stage: SinkStage
  /** Why this sink can never take the record (a limit), or undefined; checked before any sink writes. */
  readonly refuses: (keyed: Keyed, origin: BatchOrigin) => Reason | undefined
  /**
   * Writes the records; `via`, when given, is the producer a Kafka sink sends with instead of its
   * own (the batch's transaction, with KAFKA__DELIVERY=exactly_once).
   */
  readonly write: (
    records: ReadonlyArray<Keyed>,
    origin: BatchOrigin,
    via?: ProducerShape,
  ) => Effect.Effect<SinkOutcome, Err>
  /**
   * Applies the batch's tombstones (MONGODB__ON_TOMBSTONE=delete) once `written`, the records it
   * wrote of the batch, are written: MongoDB deletes each key's document unless it is newer; the
   * sink topic carries each tombstone on. The sinks the pipeline builds all have it.
   */
  readonly remove?: (
    tombstones: ReadonlyArray<Tombstone>,
    written: ReadonlyArray<Keyed>,
    origin: BatchOrigin,
    via?: ProducerShape,
  ) => Effect.Effect<void, Err>
  /**
   * A store of each key's current state (MongoDB): the batch's deletes go before its records, and
   * a record that a later tombstone of its key deletes in the same batch is not written (it counts
   * as written: what it wrote would be deleted). Otherwise (a topic) the records go first, then
   * the tombstones no later record of their key follows.
   */
  readonly deletesFirst?: boolean
}

/** Where a record was read: its own source when replayed, else its batch's partition. */
const recordPosition = (record: PipelineRecord, origin: BatchOrigin): SourcePosition =>
  record.source ?? { topic: origin.topic, partition: origin.partition, offset: record.offset }

/** Where a tombstone was read: its own source when replayed, else its batch's partition. */
const positionOf = (tombstone: Tombstone, origin: BatchOrigin): SourcePosition =>
  tombstone.source ?? { topic: origin.topic, partition: origin.partition, offset: tombstone.message.offset }

/**
 * The tombstones a compacted topic still needs after `written`: one followed, in the same batch,
 * by a written record of its key is left out (sent after that record it would delete the newer value).
 */
export const unsuperseded = (
  tombstones: ReadonlyArray<Tombstone>,
  written: ReadonlyArray<Keyed>,
): ReadonlyArray<Tombstone> => {
  const latest = lastOffsets(written.map(({ key, record }) => [key, record.offset]))
  return tombstones.filter((t) => (latest.get(t.key) ?? -1) < Number(t.message.offset))
}

/** The last offset of each key among `entries` ([key, offset]). */
const lastOffsets = (entries: Iterable<readonly [string, string]>): Map<string, number> => {
  const last = new Map<string, number>()
  for (const [key, offset] of entries) last.set(key, Math.max(last.get(key) ?? -1, Number(offset)))
  return last
}

/**
 * For a sink that applies deletes first: the records a later tombstone of their key in the same
 * batch deletes (`superseded`), and the others (`due`), which follow every delete of their key.
 */
export const splitByDeletes = (
  records: ReadonlyArray<Keyed>,
  tombstones: ReadonlyArray<Tombstone>,
): { readonly superseded: ReadonlyArray<Keyed>; readonly due: ReadonlyArray<Keyed> } => {
  const lastDelete = lastOffsets(tombstones.map((t) => [t.key, t.message.offset]))
  const superseded: Array<Keyed> = []
  const due: Array<Keyed> = []
  for (const keyed of records)
    ((lastDelete.get(keyed.key) ?? -1) > Number(keyed.record.offset) ? superseded : due).push(keyed)
  return { superseded, due }
}

export const writeConcernOf = (settings: MongoSinkSettings): WriteConcernSettings => ({
  w: settings.writeConcern,
  journal: settings.journal,
})

// Room for the `_id` field the sink adds to every document.
const idOverheadBytes = 16
// Room for the headers of a sink message (correlation id, source coordinates).
const sinkHeaderBytes = 1024

/** One DEBUG line per stale write: the key, the position of the record and of what is stored. */
const logStale = (
  name: string,
  writes: ReadonlyArray<{ readonly key: string; readonly from: SourcePosition }>,
  stale: ReadonlyArray<StaleDocument>,
) =>
  Effect.forEach(
    stale,
    ({ stored }, i) => {
      const { key, from } = writes[i]!
      return Effect.logDebug("stale write left alone: the stored document is newer").pipe(
        Effect.annotateLogs({
          sink: name,
          key,
          record_position: `${from.topic}/${from.partition}@${from.offset}`,
          stored_position: `${stored.topic}/${stored.partition}@${stored.offset}`,
        }),
      )
    },
    { discard: true },
  ).pipe(
    Effect.andThen(Metric.update(Metric.withAttributes(Metrics.staleWrites, { sink: name }), stale.length)),
  )

/** Why a record the insert model found stored is a dead letter (MONGODB__ON_EXISTING=dead_letter). */
const existingKey = (name: string, key: string): Reason => ({
  task: name,
  rule: "existing_key",
  message: `a document of key ${JSON.stringify(key)} is stored already, written from another record: MONGODB__WRITE_MODEL=insert leaves it as it is, and MONGODB__ON_EXISTING=dead_letter sends the record here instead of skipping it`,
})

/** The fields of a sink's `documentKey`, as a list. */
export const documentKeyFields = (settings: MongoSinkSettings): ReadonlyArray<string> | undefined =>
  settings.documentKey === undefined
    ? undefined
    : typeof settings.documentKey === "string"
      ? [settings.documentKey]
      : settings.documentKey

/**
 * A record's version from the `newerBy` field: a timestamp (as type conversion reads one) in
 * epoch milliseconds, or the number itself; or why it has none.
 */
export const versionOf = (value: unknown): number | string => {
  if (typeof value === "number") return Number.isFinite(value) ? value : "is not a finite number"
  if (typeof value === "string") {
    const epochMs = parseTimestamp(value)
    return epochMs === undefined ? `is ${JSON.stringify(value.slice(0, 40))}, not a timestamp` : epochMs
  }
  if (value === undefined || value === null) return "is missing or null"
  return `is ${Array.isArray(value) ? "an array" : `a ${typeof value}`}`
}

export const mongoSink = (
  name: string,
  mongo: MongoDbShape,
  settings: MongoSinkSettings,
): Sink<MongoWriteError> => {
  const writeConcern = writeConcernOf(settings)
  const writeModel = settings.writeModel ?? mongo.writeModel
  const onExisting = settings.onExisting ?? mongo.onExisting
  const keyFields = documentKeyFields(settings)
  const keyPaths: ReadonlyArray<Path> | undefined = keyFields?.map(parsePath)
  const newerBy = settings.newerBy
  const newerByPath = newerBy === undefined ? undefined : parsePath(newerBy)

  /** The document's `_id`: the record key, or the values of the sink's `documentKey` fields. */
  const idOf = ({ record, key }: Keyed): string | Reason => {
    if (keyPaths === undefined || keyFields === undefined) return key
    const id = keyOf(
      keyPaths.map((p) => getPath(record.value, p)),
      defaultMaxKeyBytes,
    )
    return typeof id === "string"
      ? id
      : {
          task: name,
          field: keyFields.join(","),
          rule: "document_key",
          message: `the document key: ${describeKeyProblem(id, keyFields)}`,
        }
  }

  /** The record's version by `newerBy`, when the sink has one. */
  const versionOfRecord = (record: PipelineRecord): number | Reason | undefined => {
    if (newerByPath === undefined || newerBy === undefined) return undefined
    const version = versionOf(getPath(record.value, newerByPath))
    return typeof version === "number"
      ? version
      : {
          task: name,
          field: newerBy,
          rule: "newer_by",
          message: `the version field ${newerBy} ${version}: newerBy needs a timestamp or a number to order the document's versions`,
        }
  }

  return {
    name,
    stage: "mongodb_sink",
    deletesFirst: true,
    refuses: (keyed) => {
      const { record, key } = keyed
      const id = idOf(keyed)
      if (typeof id !== "string") return id
      const version = versionOfRecord(record)
      if (typeof version === "object") return version
      // `$set` reads a dot in a field name as a path: merged, "a.b" would land in a's field b.
      if (writeModel === "merge") {
        const dotted = Object.keys(record.value).find((field) => field.includes("."))
        if (dotted !== undefined)
          return {
            task: name,
            rule: "field_name",
            field: dotted,
            message: `MONGODB__WRITE_MODEL=merge sets each field by name, and reads the dot in "${dotted}" as a path; rename it (field mapping) to merge it`,
          }
      }
      if (Object.hasOwn(record.value, positionField))
        return {
          task: name,
          rule: "reserved_field",
          message: `the field "${positionField}" is where the MongoDB sink keeps each document's source position; rename it (field mapping) to keep it`,
        }
      // BSON takes at most 8 bytes for every byte of JSON (a one-digit number becomes a double
      // with its type and field name): a record read from a small message cannot be too large.
      if (record.sourceBytes !== undefined && record.sourceBytes * 8 + id.length * 3 < maxDocumentBytes)
        return undefined
      const bytes = BSON.calculateObjectSize(record.value) + Buffer.byteLength(id) + idOverheadBytes
      return bytes > maxDocumentBytes
        ? {
            task: name,
            rule: "size",
            message: `the document would be ${bytes} bytes, over MongoDB's limit of ${maxDocumentBytes}`,
          }
        : undefined
    },
    write: (given, origin) => {
      // What admission let through has its document key and version; a record that has not is turned away here too.
      const records: Array<Keyed> = []
      const documents: Array<SinkDocument> = []
      const unfit: Array<SinkRejection> = []
      for (const keyed of given) {
        const id = idOf(keyed)
        const version = versionOfRecord(keyed.record)
        if (typeof id !== "string" || typeof version === "object") {
          unfit.push({ record: keyed.record, reason: typeof id !== "string" ? id : (version as Reason) })
          continue
        }
        records.push(keyed)
        const position = recordPosition(keyed.record, origin)
        documents.push(
          version === undefined
            ? { id, document: keyed.record.value, position }
            : { id, document: keyed.record.value, position, version },
        )
      }
      return mongo.upsert(documents, writeConcern, writeModel).pipe(
        Effect.tap(({ stale }) =>
          stale.length === 0
            ? Effect.void
            : logStale(
                name,
                stale.map(({ index }) => ({ key: documents[index]!.id, from: documents[index]!.position })),
                stale,
              ),
        ),
        Effect.tap(({ skipped }) =>
          skipped.length === 0 || onExisting === "dead_letter"
            ? Effect.void
            : Metric.update(Metric.withAttributes(Metrics.skippedInserts, { sink: name }), skipped.length),
        ),
        Effect.tap(({ refused, stale, skipped }) =>
          Metric.update(
            Metric.withAttributes(Metrics.mongoWrites, { sink: name, model: writeModel }),
            documents.length - refused.length - stale.length - skipped.length,
          ),
        ),
        Effect.map(({ refused, skipped }) => {
          const existing = onExisting === "dead_letter" ? skipped : []
          return {
            // A stale record, or one the insert model skipped, is accounted as written: the sink
            // holds a version of its key.
            written: records.length - refused.length - existing.length,
            rejected: [
              ...unfit,
              ...refused.map((r) => ({
                record: records[r.index]!.record,
                reason: {
                  task: name,
                  rule: r.code === undefined ? "document" : `mongodb_error_${r.code}`,
                  message: r.message,
                },
              })),
              ...existing.map((index) => ({
                record: records[index]!.record,
                reason: existingKey(name, records[index]!.key),
              })),
            ],
          }
        }),
      )
    },
    remove: (tombstones, _written, origin) => {
      if (tombstones.length === 0) return Effect.void
      const keys = tombstones.map((t) => ({ id: t.key, position: positionOf(t, origin) }))
      return mongo.remove(keys, writeConcern).pipe(
        Effect.tap(({ deleted }) =>
          Metric.update(Metric.withAttributes(Metrics.mongoDeletes, { sink: name }), deleted),
        ),
        Effect.flatMap(({ stale }) =>
          stale.length === 0
            ? Effect.void
            : logStale(
                name,
                stale.map(({ index }) => ({ key: keys[index]!.id, from: keys[index]!.position })),
                stale,
              ),
        ),
      )
    },
  }
}

export const kafkaSink = (
  name: string,
  producer: ProducerShape,
  topic: string,
  settings: KafkaSinkSettings,
): Sink<KafkaProduceError> => {
  // A record whose size was checked by encoding it sends the message made then (its value is
  // encoded once); any other is encoded when it is written, and again only if that write is
  // retried or split, which is rarer than keeping every message sent would be costly.
  const measured = new WeakMap<PipelineRecord, Message>()
  const messageOf = ({ record, key }: Keyed, origin: BatchOrigin): Message =>
    measured.get(record) ?? sinkMessage(origin, key, record.offset, record.value, record.headers)
  return {
    name,
    stage: "kafka_sink",
    refuses: (keyed, origin) => {
      // Measured uncompressed, whatever the codec: a record that fits only if the batch happens to
      // compress well is refused by both sinks, not taken by one and refused by the broker.
      const limit = producer.maxMessageBytes(topic) - batchOverheadBytes
      // Re-encoded, a record takes at most twice its source bytes (transforms add little), plus
      // the key and the headers: only a record near the limit is encoded here to be measured.
      const { sourceBytes, headers } = keyed.record
      if (
        sourceBytes !== undefined &&
        sourceBytes * 2 + keyed.key.length * 3 + sinkHeaderBytes + headersSize(headers) < limit
      )
        return undefined
      const message = sinkMessage(origin, keyed.key, keyed.record.offset, keyed.record.value, headers)
      const bytes = encodedSize(message)
      if (bytes <= limit) measured.set(keyed.record, message)
      return bytes > limit
        ? {
            task: name,
            rule: "size",
            message: `the message would be ${bytes} bytes, over what topic "${topic}" accepts (${limit} bytes: max.message.bytes less the batch header)`,
          }
        : undefined
    },
    write: (records, origin, via) =>
      Effect.suspend(() =>
        (via ?? producer).send(
          topic,
          records.map((r) => messageOf(r, origin)),
          settings.compression,
        ),
      ).pipe(Effect.as({ written: records.length, rejected: [] })),
    remove: (tombstones, written, origin, via) =>
      Effect.suspend(() => {
        const due = unsuperseded(tombstones, written)
        return due.length === 0
          ? Effect.void
          : (via ?? producer).send(
              topic,
              due.map((t) => tombstoneMessage(origin, t.key, t.message.offset, t.message.headers)),
              settings.compression,
            )
      }),
  }
}
