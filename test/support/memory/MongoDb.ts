/**
 * The in-memory stand-in for src/Mongo/MongoDb.ts: documents by `_id`, replaced (or deleted) only
 * by a write from the same or a later position of their partition; the server can be down, hang, or refuse
 * a document.
 */
import { Effect } from "effect"
import { MongoDb } from "../../../src/Mongo/MongoDb.js"
import {
  isNewer,
  type OnExisting,
  positionField,
  type StaleDocument,
  type StoredPosition,
  samePosition,
  storedPosition,
  type WriteModel,
} from "../../../src/Mongo/MongoSink.js"
import type { SavedKeys } from "../../../src/Mongo/SavedKeys.js"
import type { State } from "./State.js"

export const memoryMongo = (
  state: State,
  writeModel: WriteModel = "replace",
  onExisting: OnExisting = "skip",
) =>
  MongoDb.of({
    upsert: (documents, _writeConcern, model) =>
      Effect.suspend(() => {
        if (state.mongoDown !== undefined) return Effect.fail(state.mongoDown)
        if (state.mongoHangs) return Effect.never
        const refused = []
        const stale: Array<StaleDocument> = []
        const skipped: Array<number> = []
        for (const [index, { id, document, position, version }] of documents.entries()) {
          const incoming = storedPosition(position, version)
          const stored = state.documents.get(id)?.[positionField] as StoredPosition | undefined
          if (state.refusedIds.has(id)) {
            refused.push({ index, code: 2, message: `document ${id} refused (in-memory test)` })
          } else if (model === "insert" && state.documents.has(id)) {
            // Stored from this record's own position: its earlier write (a batch read again).
            if (stored !== undefined && samePosition(stored, incoming)) continue
            if (stored !== undefined && isNewer(stored, incoming)) stale.push({ index, stored })
            else skipped.push(index)
          } else if (stored !== undefined && isNewer(stored, incoming)) {
            stale.push({ index, stored })
          } else {
            const kept = model === "merge" ? state.documents.get(id) : undefined
            state.documents.set(id, { ...kept, ...document, _id: id, [positionField]: incoming })
          }
        }
        return Effect.succeed({ refused, stale, skipped })
      }),
    remove: (keys) =>
      Effect.suspend(() => {
        if (state.mongoDown !== undefined) return Effect.fail(state.mongoDown)
        if (state.mongoHangs) return Effect.never
        let deleted = 0
        const stale: Array<StaleDocument> = []
        for (const [index, { id, position }] of keys.entries()) {
          const stored = state.documents.get(id)
          if (stored === undefined) continue
          const at = stored[positionField] as StoredPosition | undefined
          if (at !== undefined && isNewer(at, storedPosition(position))) stale.push({ index, stored: at })
          else {
            state.documents.delete(id)
            deleted++
          }
        }
        return Effect.succeed({ deleted, stale })
      }),
    writeModel,
    onExisting,
    ping: Effect.void,
    windows: {
      save: (scope, saved) =>
        Effect.sync(() => {
          const name = `${scope.group}/${scope.task}/${scope.topic}/${scope.partition}`
          const batches = state.savedKeys.get(name) ?? new Map<string, SavedKeys>()
          batches.set(saved.first, saved)
          state.savedKeys.set(name, batches)
        }),
      load: (scope, forget) =>
        Effect.sync(() => {
          const name = `${scope.group}/${scope.task}/${scope.topic}/${scope.partition}`
          return [...(state.savedKeys.get(name)?.values() ?? [])]
            .filter((s) => s.at >= forget.since && Number(s.last) >= forget.offset)
            .sort((a, b) => Number(a.first) - Number(b.first))
        }),
    },
  })
