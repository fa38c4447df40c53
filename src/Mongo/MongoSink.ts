/**
 * The MongoDB sink: every record is stored under its key as `_id`, so a replayed batch
 * rewrites the same documents instead of adding new ones.
 *
 * A batch is first inserted as one unordered bulk: new keys, the common case, cost one cheap
 * insert each. Documents whose key exists already (E11000: a replay, or a newer version of a
 * record) are then replaced by `_id`. A replace bulk that fails on some documents is split in
 * halves until each failing document stands alone: servers differ in what a failed update
 * bulk leaves behind (MongoDB applies the rest; FerretDB stops at the first error and may
 * report a wrong index), so a document counts as written only when a bulk containing it was
 * acknowledged, and as rejected only when it failed on its own with a data error.
 *
 * A replace command carries at most `replaceBatchSize` documents: a server with a slow replace
 * path or a small connection pool then answers each command within the timeout, or the
 * write times out and stalls visibly, rather than one huge command hanging.
 *
 * Limits (depth, field names, size) are checked before the sink is called (Pipeline/Admission.ts).
 */
import { Effect } from "effect"
import { type Collection, type Document, MongoBulkWriteError, type WriteConcernSettings } from "mongodb"
import { describe, isDataWriteError, kindOfMongoError, MongoWriteError } from "./Errors.js"

/** MongoDB's largest document (BSON), in bytes. */
export const maxDocumentBytes = 16 * 1024 * 1024

/** What the sink stores: the record's fields, under the record key as `_id`. */
export interface StoredDocument extends Document {
  _id: string
}

export interface SinkDocument {
  /** The record key, stored as the document's `_id`. */
  readonly id: string
  readonly document: Document
}

/** A document the server refused with a data error. */
export interface RefusedDocument {
  /** Index of the document in the input array. */
  readonly index: number
  readonly code: number | undefined
  readonly message: string
}

const writeErrorsOf = (e: MongoBulkWriteError) =>
  e.writeErrors === undefined ? [] : Array.isArray(e.writeErrors) ? e.writeErrors : [e.writeErrors]

type Attempt =
  | { readonly ok: true }
  | { readonly ok: false; readonly code: number | undefined; readonly message: string }

/**
 * Writes every document or rejects it with a data error; fails (retryably or not) only when
 * the server as a whole cannot take the writes, so the caller can retry the batch.
 */
export const upsertAll = (
  collection: Collection<StoredDocument>,
  documents: ReadonlyArray<SinkDocument>,
  writeConcern: WriteConcernSettings,
  replaceBatchSize = 25,
): Effect.Effect<ReadonlyArray<RefusedDocument>, MongoWriteError> =>
  Effect.tryPromise({
    try: async () => {
      const rejections: RefusedDocument[] = []
      const pending = documents.map((_, index) => index)

      const withId = (i: number): StoredDocument => ({ ...documents[i]!.document, _id: documents[i]!.id })
      const withoutId = (i: number): Document => {
        const { _id, ...rest } = documents[i]!.document
        return rest
      }

      /** Inserts; returns the documents that need the replace path (their key exists, or a data error). */
      const insert = async (indexes: ReadonlyArray<number>): Promise<ReadonlyArray<number>> => {
        if (indexes.length === 0) return []
        try {
          await collection.insertMany(indexes.map(withId), { ordered: false, writeConcern })
          return []
        } catch (cause) {
          const errors = cause instanceof MongoBulkWriteError ? writeErrorsOf(cause) : []
          if (!(cause instanceof MongoBulkWriteError) || errors.length === 0) throw cause
          if (cause.writeConcernError !== undefined) throw cause
          if (!errors.every((e) => e.code === 11000 || isDataWriteError(e.code))) throw cause
          return errors.map((e) => indexes[e.index]!)
        }
      }

      const bulk = async (indexes: ReadonlyArray<number>): Promise<Attempt> => {
        try {
          await collection.bulkWrite(
            indexes.map((i) => ({
              // The equality filter on _id gives an inserted document its _id.
              replaceOne: { filter: { _id: documents[i]!.id }, replacement: withoutId(i), upsert: true },
            })),
            { ordered: false, writeConcern },
          )
          return { ok: true }
        } catch (cause) {
          const list = cause instanceof MongoBulkWriteError ? writeErrorsOf(cause) : []
          if (list.length === 0) throw cause
          const first = list[0]!
          // E11000 is either a race between two first upserts of one key (gone on retry) or a clash
          // on another unique index (permanent); which one shows once the document stands alone.
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
        const final = attempt.code === 11000 ? await bulk(indexes) : attempt
        if (!final.ok) rejections.push({ index: indexes[0]!, code: final.code, message: final.message })
      }

      const existing = await insert(pending)
      for (let i = 0; i < existing.length; i += replaceBatchSize) {
        await write(existing.slice(i, i + replaceBatchSize))
      }
      return rejections.sort((a, b) => a.index - b.index)
    },
    catch: (cause) =>
      new MongoWriteError({ documents: documents.length, kind: kindOfMongoError(cause), cause }),
  })
