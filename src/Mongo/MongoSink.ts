/**
 * The MongoDB sink: one unordered bulk of replace-upserts per batch, keyed by the record key,
 * so that a replayed batch rewrites the same documents instead of adding new ones.
 *
 * A bulk that fails on some documents is split in halves until each failing document stands
 * alone. Servers differ in what an unordered bulk leaves behind on error (MongoDB applies the
 * rest; FerretDB stops at the first error and may report a wrong index), so the sink trusts
 * nothing but a clean acknowledgement: a document is written when a bulk containing it
 * succeeded, and rejected when it failed on its own with a data error.
 */
import { Effect } from "effect"
import { BSON, type Collection, type Document, MongoBulkWriteError, type WriteConcernSettings } from "mongodb"
import {
  describe,
  isDataWriteError,
  isTransientCommandError,
  MongoIndexError,
  MongoWriteError,
} from "./Errors.js"

export const keyIndexName = "pipeline_key"
const maxDocumentBytes = 16 * 1024 * 1024

export interface SinkDocument {
  /** Equality filter on the key fields: `{ event_id: "evt-1" }`. */
  readonly filter: Document
  readonly document: Document
}

export interface Rejection {
  /** Index of the document in the input array. */
  readonly index: number
  readonly code: number | undefined
  readonly message: string
}

/** Ensures the unique index on the key fields that makes upserts by key safe. */
export const ensureKeyIndex = (collection: Collection<Document>, keyFields: ReadonlyArray<string>) =>
  Effect.tryPromise({
    try: async () => {
      const spec = Object.fromEntries(keyFields.map((f) => [f, 1]))
      const existing = await collection
        .listIndexes()
        .toArray()
        .catch(() => [] as Document[])
      const same = existing.find(
        (ix) => ix.unique === true && JSON.stringify(ix.key) === JSON.stringify(spec),
      )
      if (same === undefined) await collection.createIndex(spec, { unique: true, name: keyIndexName })
    },
    catch: (cause) => new MongoIndexError({ collection: collection.collectionName, keys: keyFields, cause }),
  })

/** Problems the server would reject anyway, found before sending (and before failing a whole bulk). */
const precheck = (document: Document): string | undefined => {
  const bad = findDollarKey(document)
  if (bad !== undefined) return `field name "${bad}" starts with "$", which MongoDB does not store`
  if (BSON.calculateObjectSize(document) > maxDocumentBytes) return "document is larger than 16 MiB"
  return undefined
}

const findDollarKey = (value: unknown): string | undefined => {
  if (Array.isArray(value)) {
    for (const v of value) {
      const found = findDollarKey(v)
      if (found !== undefined) return found
    }
  } else if (typeof value === "object" && value !== null) {
    for (const [k, v] of Object.entries(value)) {
      if (k.startsWith("$")) return k
      const found = findDollarKey(v)
      if (found !== undefined) return found
    }
  }
  return undefined
}

type Attempt =
  | { readonly ok: true }
  | { readonly ok: false; readonly code: number | undefined; readonly message: string }

/**
 * Writes every document or rejects it with a data error; fails (retryably or not) only when
 * the server as a whole cannot take the writes, so the caller can retry the batch.
 */
export const upsertAll = (
  collection: Collection<Document>,
  documents: ReadonlyArray<SinkDocument>,
  writeConcern: WriteConcernSettings,
): Effect.Effect<ReadonlyArray<Rejection>, MongoWriteError> =>
  Effect.tryPromise({
    try: async () => {
      const rejections: Rejection[] = []
      const pending: number[] = []
      documents.forEach((d, index) => {
        const problem = precheck(d.document)
        if (problem === undefined) pending.push(index)
        else rejections.push({ index, code: undefined, message: problem })
      })

      const bulk = async (indexes: ReadonlyArray<number>): Promise<Attempt> => {
        try {
          await collection.bulkWrite(
            indexes.map((i) => ({
              replaceOne: { filter: documents[i]!.filter, replacement: documents[i]!.document, upsert: true },
            })),
            { ordered: false, writeConcern },
          )
          return { ok: true }
        } catch (cause) {
          const errors = cause instanceof MongoBulkWriteError ? cause.writeErrors : undefined
          const list = errors === undefined ? [] : Array.isArray(errors) ? errors : [errors]
          if (list.length === 0 || cause instanceof MongoBulkWriteError === false) throw cause
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

      await write(pending)
      return rejections.sort((a, b) => a.index - b.index)
    },
    catch: (cause) =>
      new MongoWriteError({ documents: documents.length, retryable: isTransientCommandError(cause), cause }),
  })
