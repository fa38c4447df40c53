/**
 * Deletes by key, for tombstones (MONGODB__ON_TOMBSTONE=delete). Monotonic like the writes
 * (MongoSink.ts): the stored positions are read first, and a document written from a later
 * offset of the tombstone's partition is left alone (stale), so a delete never undoes a newer
 * write. On MongoDB the delete's filter also holds the position condition, so a newer write
 * landing between the read and the delete still wins; FerretDB scans the collection for any
 * filter other than `{_id}` (../shared/INFRA.md), so there the filter is `{_id}` alone and the
 * read decides. A delete command carries at most `replaceBatchSize` statements.
 */
import { Effect } from "effect"
import type { Collection, WriteConcernSettings } from "mongodb"
import type { SourcePosition } from "../Domain/Record.js"
import { kindOfMongoError, MongoWriteError } from "./Errors.js"
import {
  isNewer,
  positionFilter,
  type StaleDocument,
  type StoredDocument,
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
      for (const [i, key] of keys.entries()) {
        // A key with no document has nothing to delete.
        if (!stored.has(key.id)) continue
        const position = stored.get(key.id)
        if (position !== undefined && isNewer(position, positions[i]!))
          stale.push({ index: i, stored: position })
        else due.push(i)
      }
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
