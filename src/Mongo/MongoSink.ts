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
 * With a version field (the sink's `newerBy`), a document also keeps the record's version (the
 * field's time as epoch milliseconds, or its number) in `_kafka.version`, and versions order the
 * writes before positions do: a write of an older version is stale from any partition; between
 * equal versions, or when one side has none, the positions decide as above.
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
  /** The record's version (the sink's `newerBy` field), when it has one. */
  readonly version?: number
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
  /** The record's version (the sink's `newerBy` field): it orders the writes before the position does. */
  readonly version?: number
}

export const storedPosition = (position: SourcePosition, version?: number): StoredPosition =>
  version === undefined
    ? { topic: position.topic, partition: position.partition, offset: Number(position.offset) }
    : { topic: position.topic, partition: position.partition, offset: Number(position.offset), version }

/**
 * Whether a document stored from `stored` is newer than a write from `incoming`: the write is then
 * stale. Versions decide when both have one and they differ; otherwise the later offset of the
 * same partition.
 */
export const isNewer = (stored: StoredPosition | undefined, incoming: StoredPosition): boolean => {
  if (stored === undefined) return false
  if (
    typeof stored.version === "number" &&
    incoming.version !== undefined &&
    stored.version !== incoming.version
  )
    return stored.version > incoming.version
  return (
    stored.topic === incoming.topic &&
    stored.partition === incoming.partition &&
    stored.offset > incoming.offset
  )
}

/** The filter a replace matches only when the stored document is not newer than `position` (isNewer on the server). */
const notNewerThan = (position: StoredPosition): Document => {
  const byPosition = [
    { [`${positionField}.topic`]: { $ne: position.topic } },
    { [`${positionField}.partition`]: { $ne: position.partition } },
    { [`${positionField}.offset`]: { $lte: position.offset } },
  ]
  if (position.version === undefined) return { $or: byPosition }
  const version = `${positionField}.version`
  // `$in` with null also matches a document stored without a version.
  return {
    $or: [
      { [version]: { $lt: position.version } },
      { [version]: { $in: [position.version, null] }, $or: byPosition },
    ],
  }
}

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

/**
 * Runs work on some keys once no other work holds any of them: on a server where the read before
 * a replace decides alone (FerretDB), two batches of one process that write one document (a
 * document key or versions across partitions) must not interleave their reads and replaces.
 */
export class KeyLocks {
  private readonly held = new Map<string, Promise<void>>()

  async run<A>(keys: ReadonlyArray<string>, work: () => Promise<A>): Promise<A> {
    const unique = [...new Set(keys)]
    for (;;) {
      const busy: Array<Promise<void>> = []
      for (const key of unique) {
        const holder = this.held.get(key)
        if (holder !== undefined) busy.push(holder)
      }
      if (busy.length === 0) break
      await Promise.all(busy)
    }
    let release: () => void = () => undefined
    const done = new Promise<void>((resolve) => {
      release = resolve
    })
    for (const key of unique) this.held.set(key, done)
    try {
      return await work()
    } finally {
      for (const key of unique) if (this.held.get(key) === done) this.held.delete(key)
      release()
    }
  }
}

/** Where deletes leave their markers (MongoDeletes.ts), and when old ones were last pruned. */
export interface DeleteMarkers {
  readonly collection: Collection<StoredDocument>
  prunedAt: number
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
  /** Where the read decides alone: the keys being read and replaced by this process's other batches. */
  readonly locks?: KeyLocks
  /** Where deletes are applied (tombstones, change events): their markers, which make older writes stale. */
  readonly markers?: DeleteMarkers
}

// Stored positions are read this many `_id` lookups at a time where `$in` would scan (FerretDB).
const lookupConcurrency = 8

/**
 * The writes of several versions of one document in a call, in the order they must land: oldest
 * first (by isNewer; writes it cannot order keep their order). A replace needs only the newest of
 * each document, one round; merges go in rounds, the k-th version of each document in round k,
 * so that no bulk holds two of them (an unordered bulk need not apply them in order).
 */
export const inRounds = (
  indexes: ReadonlyArray<number>,
  idOf: (index: number) => string,
  positions: ReadonlyArray<StoredPosition>,
  writeModel: WriteModel,
): ReadonlyArray<ReadonlyArray<number>> => {
  const byId = new Map<string, Array<number>>()
  for (const i of indexes) {
    const versions = byId.get(idOf(i))
    if (versions === undefined) byId.set(idOf(i), [i])
    else versions.push(i)
  }
  if (byId.size === indexes.length) return [indexes]
  const rounds: Array<Array<number>> = []
  for (const versions of byId.values()) {
    versions.sort((a, b) =>
      isNewer(positions[a], positions[b]!) ? 1 : isNewer(positions[b], positions[a]!) ? -1 : a - b,
    )
    const due = writeModel === "merge" ? versions : [versions[versions.length - 1]!]
    for (const [k, i] of due.entries()) {
      const round = rounds[k]
      if (round === undefined) rounds[k] = [i]
      else round.push(i)
    }
  }
  return rounds
}

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
      const positions = documents.map((d) => storedPosition(d.position, d.version))

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

      /** Sets aside the documents a newer one stored in `from` (the documents, or the deletes' markers) makes stale; returns the others. */
      const withoutStale = async (
        indexes: ReadonlyArray<number>,
        from: Collection<StoredDocument> = collection,
      ): Promise<ReadonlyArray<number>> => {
        if (indexes.length === 0) return indexes
        const stored = await storedPositions(
          from,
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

      // A write older than a delete of its key is stale, also where the document is gone.
      const live =
        options.markers === undefined ? pending : await withoutStale(pending, options.markers.collection)
      const refusedByInsert = await insert(live)
      if (writeModel === "insert") await settleInserts(refusedByInsert)
      else {
        const replaceExisting = async () => {
          const existing = await withoutStale(refusedByInsert.map((r) => r.index))
          for (const round of inRounds(existing, (i) => documents[i]!.id, positions, writeModel)) {
            for (let i = 0; i < round.length; i += replaceBatchSize) {
              await write(round.slice(i, i + replaceBatchSize))
            }
          }
        }
        const locks = options.locks
        if (locks === undefined || conditionalReplace || refusedByInsert.length === 0) await replaceExisting()
        else
          await locks.run(
            refusedByInsert.map((r) => documents[r.index]!.id),
            replaceExisting,
          )
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
