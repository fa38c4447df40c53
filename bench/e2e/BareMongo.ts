/**
 * The MongoDB sink's write as baselines B and C make it with the bare driver: one unordered
 * insertMany per batch with the key as `_id`, and only the documents whose `_id` already exists
 * (E11000) replaced by `_id` with upsert. Any other error fails the baseline.
 */
import {
  type AnyBulkWriteOperation,
  type BulkWriteOptions,
  type Collection,
  type Document,
  MongoBulkWriteError,
} from "mongodb"

/** A document under its key. */
export interface Keyed extends Document {
  _id: string
}

export interface Written {
  readonly inserted: number
  readonly replaced: number
}

const withoutId = (d: Keyed): Document => {
  const { _id, ...rest } = d
  return rest
}

const replaceAll = (docs: ReadonlyArray<Keyed>): AnyBulkWriteOperation<Keyed>[] =>
  docs.map((d) => ({ replaceOne: { filter: { _id: d._id }, replacement: withoutId(d), upsert: true } }))

export const insertOrReplace = async (
  collection: Collection<Keyed>,
  batch: ReadonlyArray<Keyed>,
  options: BulkWriteOptions,
): Promise<Written> => {
  if (batch.length === 0) return { inserted: 0, replaced: 0 }
  try {
    await collection.insertMany(batch, options)
    return { inserted: batch.length, replaced: 0 }
  } catch (e) {
    if (!(e instanceof MongoBulkWriteError)) throw e
    const errors = Array.isArray(e.writeErrors) ? e.writeErrors : [e.writeErrors]
    if (errors.length === 0 || errors.some((w) => w.code !== 11000)) throw e
    const existing = errors.map((w) => batch[w.index]!)
    await collection.bulkWrite(replaceAll(existing), options)
    return { inserted: batch.length - existing.length, replaced: existing.length }
  }
}
