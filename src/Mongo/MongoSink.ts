/**
 * The MongoDB sink: every record is stored under its key as `_id`, so a replayed batch
 * rewrites the same documents instead of adding new ones.
 *
 * Writes are monotonic: each document keeps the source position it was written from in
 * `_kafka` (topic, partition, offset), and a write replaces a document only when it comes from
 * the same position or a later one of the same partition. An older write that arrives late (a
 * replay, an instance that lost its partition, a write abandoned by a timeout) changes nothing
 * and is reported as stale. Positions of different partitions or topics are not ordered: such a
 * write replaces (the key moved partitions).
 *
 * A batch is first inserted as one unordered bulk: new keys, the common case, cost one cheap
 * insert each. For documents whose key exists already (E11000) the stored positions are read,
 * the stale ones set aside, and the rest replaced by `_id`. On MongoDB the replace's filter also
 * carries the position condition, so a newer write landing between the read and the replace
 * still wins; FerretDB scans the collection for any filter other than `{_id}`
 * (../shared/INFRA.md), so there the read alone decides. A replace bulk that fails on some
 * documents is split in halves until each failing document stands alone: servers differ in what
 * a failed update bulk leaves behind (MongoDB applies the rest; FerretDB stops at the first error
 * and may report a wrong index), so a document counts as written only when a bulk containing it
 * was acknowledged, and as rejected only when it failed on its own with a data error.
 *
 * The write model (MONGODB__WRITE_MODEL) says what a write does to a stored document of its key:
 * `replace` (the default) replaces it; `merge` sets the record's top-level fields on it
 * (`$set`, by `_id`, with the same position condition), keeping the fields the record lacks;
 * `insert` leaves it as it is and reports the record as skipped. New keys are inserted whole
 * under every model.
 *
 * A replace command carries at most `replaceBatchSize` documents: a server with a slow replace
 * path or a small connection pool then answers each command within the timeout, or the
 * write times out and stalls visibly, rather than one huge command hanging.
 *
 * Limits (depth, field names, size, the `_kafka` field) are checked before the sink is called
 * (Pipeline/Admission.ts, Pipeline/Sinks.ts).
 */
import { Effect } from "effect"
import { type Collection, type Document, MongoBulkWriteError, type WriteConcernSettings } from "mongodb"
import type { SourcePosition } from "../Domain/Record.js"
import { describe, isDataWriteError, kindOfMongoError, MongoWriteError } from "./Errors.js"

/** MongoDB's largest document (BSON), in bytes. */
export const maxDocumentBytes = 16 * 1024 * 1024

/** The field where each document keeps the source position it was written from. */
export const positionField = "_kafka"

/** A source position as a document stores it: the offset as a number, so that the server can compare it. */
export interface StoredPosition {
  readonly topic: string
  readonly partition: number
  readonly offset: number
}

/** What the sink stores: the record's fields, under the record key as `_id`, with its source position. */
export interface StoredDocument extends Document {
  _id: string
  _kafka?: StoredPosition
}

export interface SinkDocument {
  /** The record key, stored as the document's `_id`. */
  readonly id: string
  readonly document: Document
  /** Where the record was read: the write replaces a stored document only when that is not older. */
  readonly position: SourcePosition
}

export const storedPosition = (position: SourcePosition): StoredPosition => ({
  topic: position.topic,
  partition: position.partition,
  offset: Number(position.offset),
})

/** Whether a document stored from `stored` is newer than a write from `incoming`: the write is then stale. */
export const isNewer = (stored: StoredPosition | undefined, incoming: StoredPosition): boolean =>
  stored !== undefined &&
  stored.topic === incoming.topic &&
  stored.partition === incoming.partition &&
  stored.offset > incoming.offset

/** The filter a replace matches only when the stored document is not newer than `position`. */
const notNewerThan = (position: StoredPosition): Document => ({
  $or: [
    { [`${positionField}.topic`]: { $ne: position.topic } },
    { [`${positionField}.partition`]: { $ne: position.partition } },
    { [`${positionField}.offset`]: { $lte: position.offset } },
  ],
})

/** A document the server refused with a data error. */
export interface RefusedDocument {
  /** Index of the document in the input array. */
  readonly index: number
  readonly code: number | undefined
  readonly message: string
}

/** A document not written because the stored one comes from a later position of its partition. */
export interface StaleDocument {
  /** Index of the document in the input array. */
  readonly index: number
  readonly stored: StoredPosition
}

/** What a write does to a stored document of its key (MONGODB__WRITE_MODEL). */
export type WriteModel = "replace" | "merge" | "insert"

/** With the insert model, what becomes of a record whose key is stored already (MONGODB__ON_EXISTING). */
export type OnExisting = "skip" | "dead_letter"

/** Whether `a` and `b` are one position: a document stored from a record's own position is that record's earlier write. */
export const samePosition = (a: StoredPosition, b: StoredPosition): boolean =>
  a.topic === b.topic && a.partition === b.partition && a.offset === b.offset

export interface UpsertResult {
  readonly refused: ReadonlyArray<RefusedDocument>
  readonly stale: ReadonlyArray<StaleDocument>
  /**
   * Indexes of the documents not written because their key is stored (the `insert` model) by
   * another record: a document stored from the record's own position (a batch read again) is
   * its own earlier write, and a newer one of its partition makes it stale.
   */
  readonly skipped: ReadonlyArray<number>
}

export interface UpsertOptions {
  /** Documents per replace command. */
  readonly replaceBatchSize: number
  /**
   * Whether replaces carry the position condition in their filter (MongoDB); false where any
   * filter beyond `{_id}` scans the collection (FerretDB), and the read before the write decides.
   */
  readonly conditionalReplace: boolean
  /** What a write does to a stored document of its key; `replace` when not given. */
  readonly writeModel?: WriteModel
}

// Stored positions are read this many `_id` lookups at a time where `$in` would scan (FerretDB).
const lookupConcurrency = 8

/** The per-document errors of a failed bulk write (the driver gives one or a list). */
export const writeErrorsOf = (e: MongoBulkWriteError) =>
  e.writeErrors === undefined ? [] : Array.isArray(e.writeErrors) ? e.writeErrors : [e.writeErrors]

type Attempt =
  | { readonly ok: true }
  | { readonly ok: false; readonly code: number | undefined; readonly message: string }

/**
 * The stored position of each key that has a document (undefined: stored without one). Where the
 * filter may carry conditions (MongoDB) one `$in` query; elsewhere (FerretDB scans `$in`) one
 * `_id` lookup per key, a few at a time.
 */
export const storedPositions = async (
  collection: Collection<StoredDocument>,
  ids: ReadonlyArray<string>,
  conditional: boolean,
): Promise<Map<string, StoredPosition | undefined>> => {
  const found = new Map<string, StoredPosition | undefined>()
  const projection = { [positionField]: 1 }
  const unique = [...new Set(ids)]
  if (conditional) {
    for (const d of await collection.find({ _id: { $in: unique } }, { projection }).toArray())
      found.set(d._id, d._kafka)
    return found
  }
  let next = 0
  const lookup = async () => {
    while (next < unique.length) {
      const id = unique[next++]!
      const d = await collection.findOne({ _id: id }, { projection })
      if (d !== null) found.set(id, d._kafka)
    }
  }
  await Promise.all(Array.from({ length: Math.min(lookupConcurrency, unique.length) }, lookup))
  return found
}

/** The filter of a write by `_id` from `position`: with the condition that the stored document is not newer, where the server allows it. */
export const positionFilter = (id: string, position: StoredPosition, conditional: boolean): Document =>
  conditional ? { _id: id, ...notNewerThan(position) } : { _id: id }

/**
 * Writes every document or rejects it with a data error; fails (retryably or not) only when
 * the server as a whole cannot take the writes, so the caller can retry the batch.
 */
export const upsertAll = (
  collection: Collection<StoredDocument>,
  documents: ReadonlyArray<SinkDocument>,
  writeConcern: WriteConcernSettings,
  options: UpsertOptions = { replaceBatchSize: 25, conditionalReplace: true },
): Effect.Effect<UpsertResult, MongoWriteError> =>
  Effect.tryPromise({
    try: async () => {
      const { replaceBatchSize, conditionalReplace } = options
      const writeModel = options.writeModel ?? "replace"
      const rejections: RefusedDocument[] = []
      const stale: StaleDocument[] = []
      const skipped: number[] = []
      const pending = documents.map((_, index) => index)
      const positions = documents.map((d) => storedPosition(d.position))

      const withId = (i: number): StoredDocument => ({
        ...documents[i]!.document,
        _id: documents[i]!.id,
        [positionField]: positions[i]!,
      })
      const withoutId = (i: number): Document => {
        const { _id, ...rest } = documents[i]!.document
        return { ...rest, [positionField]: positions[i]! }
      }
      const filterOf = (i: number): Document =>
        positionFilter(documents[i]!.id, positions[i]!, conditionalReplace)

      /** Sets aside the documents a newer stored one makes stale; returns the others. */
      const withoutStale = async (indexes: ReadonlyArray<number>): Promise<ReadonlyArray<number>> => {
        if (indexes.length === 0) return indexes
        const stored = await storedPositions(
          collection,
          indexes.map((i) => documents[i]!.id),
          conditionalReplace,
        )
        return indexes.filter((i) => {
          const position = stored.get(documents[i]!.id)
          if (position === undefined || !isNewer(position, positions[i]!)) return true
          stale.push({ index: i, stored: position })
          return false
        })
      }

      /** Inserts; returns the documents the insert refused (their key exists, or a data error). */
      const insert = async (indexes: ReadonlyArray<number>): Promise<ReadonlyArray<RefusedDocument>> => {
        if (indexes.length === 0) return []
        try {
          await collection.insertMany(indexes.map(withId), { ordered: false, writeConcern })
          return []
        } catch (cause) {
          const errors = cause instanceof MongoBulkWriteError ? writeErrorsOf(cause) : []
          if (!(cause instanceof MongoBulkWriteError) || errors.length === 0) throw cause
          if (cause.writeConcernError !== undefined) throw cause
          if (!errors.every((e) => e.code === 11000 || isDataWriteError(e.code))) throw cause
          return errors.map((e) => ({
            index: indexes[e.index]!,
            code: e.code,
            message: e.errmsg ?? describe(cause),
          }))
        }
      }

      /**
       * Insert only: a document whose key is stored is skipped (or, stored from the document's own
       * position, it was written by the same record read before; from a later one of its
       * partition, the document is stale); one the server refused otherwise (a data error, a clash
       * on another unique index) is rejected with the insert's error.
       */
      const settleInserts = async (refused: ReadonlyArray<RefusedDocument>): Promise<void> => {
        const clashes = refused.filter((r) => r.code === 11000)
        const stored =
          clashes.length === 0
            ? new Map()
            : await storedPositions(
                collection,
                clashes.map((r) => documents[r.index]!.id),
                conditionalReplace,
              )
        for (const r of refused) {
          const id = documents[r.index]!.id
          if (r.code !== 11000 || !stored.has(id)) {
            rejections.push(r)
            continue
          }
          const at = stored.get(id)
          if (at === undefined) skipped.push(r.index)
          else if (samePosition(at, positions[r.index]!)) continue
          else if (isNewer(at, positions[r.index]!)) stale.push({ index: r.index, stored: at })
          else skipped.push(r.index)
        }
      }

      const bulk = async (indexes: ReadonlyArray<number>): Promise<Attempt> => {
        try {
          await collection.bulkWrite(
            indexes.map((i) =>
              writeModel === "merge"
                ? { updateOne: { filter: filterOf(i), update: { $set: withoutId(i) }, upsert: true } }
                : // The equality on _id in the filter gives an inserted document its _id.
                  { replaceOne: { filter: filterOf(i), replacement: withoutId(i), upsert: true } },
            ),
            { ordered: false, writeConcern },
          )
          return { ok: true }
        } catch (cause) {
          const list = cause instanceof MongoBulkWriteError ? writeErrorsOf(cause) : []
          if (list.length === 0) throw cause
          const first = list[0]!
          // E11000 is a race between two first upserts of one key (gone on retry), a stored document
          // newer than the write (the filter's condition did not match), or a clash on another
          // unique index (permanent); which one shows once the document stands alone.
          const dataOnly = list.every((e) => e.code === 11000 || isDataWriteError(e.code))
          if (!dataOnly) throw cause
          return { ok: false, code: first.code, message: first.errmsg ?? describe(cause) }
        }
      }

      const write = async (indexes: ReadonlyArray<number>): Promise<void> => {
        if (indexes.length === 0) return
        const attempt = await bulk(indexes)
        if (attempt.ok) return
        if (indexes.length > 1) {
          const middle = indexes.length >> 1
          await write(indexes.slice(0, middle))
          await write(indexes.slice(middle))
          return
        }
        const index = indexes[0]!
        if (attempt.code === 11000 && (await withoutStale(indexes)).length === 0) return
        const final = attempt.code === 11000 ? await bulk(indexes) : attempt
        if (!final.ok) rejections.push({ index, code: final.code, message: final.message })
      }

      const refusedByInsert = await insert(pending)
      if (writeModel === "insert") await settleInserts(refusedByInsert)
      else {
        const existing = await withoutStale(refusedByInsert.map((r) => r.index))
        for (let i = 0; i < existing.length; i += replaceBatchSize) {
          await write(existing.slice(i, i + replaceBatchSize))
        }
      }
      return {
        refused: rejections.sort((a, b) => a.index - b.index),
        stale: stale.sort((a, b) => a.index - b.index),
        skipped: skipped.sort((a, b) => a - b),
      }
    },
    catch: (cause) =>
      new MongoWriteError({ documents: documents.length, kind: kindOfMongoError(cause), cause }),
  })
