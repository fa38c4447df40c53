/**
 * The in-memory stand-in for src/Mongo/MongoDb.ts: documents by `_id`; the server can be down,
 * hang, or refuse a document.
 */
import { Effect } from "effect"
import { MongoDb } from "../../../src/Mongo/MongoDb.js"
import type { State } from "./State.js"

export const memoryMongo = (state: State) =>
  MongoDb.of({
    upsert: (documents) =>
      Effect.suspend(() => {
        if (state.mongoDown !== undefined) return Effect.fail(state.mongoDown)
        if (state.mongoHangs) return Effect.never
        const rejections = []
        for (const [index, { id, document }] of documents.entries()) {
          if (state.refusedIds.has(id)) {
            rejections.push({ index, code: 2, message: `document ${id} refused (in-memory test)` })
          } else {
            state.documents.set(id, { ...document, _id: id })
          }
        }
        return Effect.succeed(rejections)
      }),
    ping: Effect.void,
  })
