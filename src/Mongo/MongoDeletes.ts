/**
 * Deletes by key, for tombstones (MONGODB__ON_TOMBSTONE=delete). Monotonic like the writes
 * (MongoSink.ts): the stored positions are read first, and a document written from a later
 * offset of the tombstone's partition is left alone (stale), so a delete never undoes a newer
 * write. On MongoDB the delete's filter also holds the position condition, so a newer write
 * landing between the read and the delete still wins; FerretDB scans the collection for any
 * filter other than `{_id}` (../shared/INFRA.md), so there the filter is `{_id}` alone and the
 * read decides. A delete command carries at most `replaceBatchSize` statements.
 *
 * A delete leaves a marker: the key's position in `<collection>_deletes` (DeleteMarkers), written
 * before the document goes, also for a key with no document. A write older than the delete that
 * arrives after it (an instance that lost its partition, a dead letter replayed) finds the
 * marker and is stale, instead of creating the document again. Markers are kept
 * `markerRetentionMs` (an hour): an older write arriving later than that does create it.
 */
import { Effect } from "effect"
import type { Collection, WriteConcernSettings } from "mongodb"
import type { SourcePosition } from "../Domain/Record.js"
import { kindOfMongoError, MongoWriteError } from "./Errors.js"
import {
  type DeleteMarkers,
  isNewer,
  positionField,
  positionFilter,
  type StaleDocument,
  type StoredDocument,
  type StoredPosition,
  storedPosition,
  storedPositions,
  type UpsertOptions,
} from "./MongoSink.js"

export interface DeletedKey {
  /** The record key: the `_id` of the document to delete. */
  readonly id: string
  /** Where the tombstone was read: a document stored from a later offset of that partition stays. */
  readonly position: SourcePosition
}

export interface DeleteResult {
  /** Documents that were there and are gone. */
  readonly deleted: number
  /** Deletes not made because the stored document is newer than the tombstone. */
  readonly stale: ReadonlyArray<StaleDocument>
}

/** How long a delete's marker is kept. */
export const markerRetentionMs = 3_600_000

/**
 * Writes the markers of deletes made from `positions`, each unless a newer one is there (a
 * tombstone read again after a newer delete of its key); prunes old markers now and then.
 */
const mark = async (
  markers: DeleteMarkers,
  ids: ReadonlyArray<string>,
  positions: ReadonlyArray<StoredPosition>,
  writeConcern: WriteConcernSettings,
  options: UpsertOptions,
): Promise<void> => {
  if (ids.length === 0) return
  const known = await storedPositions(markers.collection, ids, options.conditionalReplace)
  const latest = new Map<string, StoredPosition>()
  for (const [i, id] of ids.entries()) {
    const before = latest.get(id) ?? known.get(id)
    if (!isNewer(before, positions[i]!)) latest.set(id, positions[i]!)
  }
  const at = new Date()
  const writes = [...latest].filter(([id, position]) => known.get(id) !== position)
  for (let from = 0; from < writes.length; from += options.replaceBatchSize) {
    await markers.collection.bulkWrite(
      writes.slice(from, from + options.replaceBatchSize).map(([id, position]) => ({
        replaceOne: { filter: { _id: id }, replacement: { [positionField]: position, at }, upsert: true },
      })),
      { ordered: false, writeConcern },
    )
  }
  if (at.getTime() - markers.prunedAt >= markerRetentionMs / 6) {
    markers.prunedAt = at.getTime()
    await markers.collection.deleteMany({ at: { $lt: new Date(at.getTime() - markerRetentionMs) } })
  }
}

export const deleteAll = (
  collection: Collection<StoredDocument>,
  keys: ReadonlyArray<DeletedKey>,
  writeConcern: WriteConcernSettings,
  options: UpsertOptions,
): Effect.Effect<DeleteResult, MongoWriteError> =>
  Effect.tryPromise({
    try: async () => {
      const positions = keys.map((k) => storedPosition(k.position))
      const stored = await storedPositions(
        collection,
        keys.map((k) => k.id),
        options.conditionalReplace,
      )
      const stale: StaleDocument[] = []
      const due: number[] = []
      // Deletes that are not stale leave their marker, a key with no document too.
      const marked: number[] = []
      for (const [i, key] of keys.entries()) {
        const position = stored.get(key.id)
        if (position !== undefined && isNewer(position, positions[i]!)) {
          stale.push({ index: i, stored: position })
          continue
        }
        marked.push(i)
        // A key with no document has nothing to delete.
        if (stored.has(key.id)) due.push(i)
      }
      if (options.markers !== undefined)
        await mark(
          options.markers,
          marked.map((i) => keys[i]!.id),
          marked.map((i) => positions[i]!),
          writeConcern,
          options,
        )
      let deleted = 0
      for (let from = 0; from < due.length; from += options.replaceBatchSize) {
        const result = await collection.bulkWrite(
          due.slice(from, from + options.replaceBatchSize).map((i) => ({
            deleteOne: { filter: positionFilter(keys[i]!.id, positions[i]!, options.conditionalReplace) },
          })),
          { ordered: false, writeConcern },
        )
        deleted += result.deletedCount
      }
      return { deleted, stale }
    },
    catch: (cause) => new MongoWriteError({ documents: keys.length, kind: kindOfMongoError(cause), cause }),
  })
