/**
 * MongoDB as the pipeline uses it: upserts and deletes by `_id` in the target collection, the duplicate
 * checks' saved windows beside it, and a ping.
 * The live layer holds the client (pooled, one per process), connected when the layer is
 * built and closed when it is torn down. The connection string is a secret: it is only
 * unwrapped here.
 */
import { Context, Duration, Effect, Layer, Option, Redacted } from "effect"
import { MongoClient, type WriteConcernSettings } from "mongodb"
import { AppConfig } from "../Config/AppConfig.js"
import { MongoConnectionError, type MongoWriteError } from "./Errors.js"
import { type DeletedKey, type DeleteResult, deleteAll } from "./MongoDeletes.js"
import {
  KeyLocks,
  type OnExisting,
  type SinkDocument,
  type StoredDocument,
  type UpsertResult,
  upsertAll,
  type WriteModel,
} from "./MongoSink.js"
import { type StoredKeys, type WindowStore, windowStore } from "./SavedKeys.js"

export interface MongoDbShape {
  /**
   * Stores every document under its `_id`, replacing what is there unless that was written from
   * a later position of the same partition; returns the documents the server rejected with a
   * data error and those left alone as stale. Fails when the server as a whole cannot take the
   * writes.
   */
  readonly upsert: (
    documents: ReadonlyArray<SinkDocument>,
    writeConcern: WriteConcernSettings,
    writeModel: WriteModel,
  ) => Effect.Effect<UpsertResult, MongoWriteError>
  /**
   * Deletes the document of each key, unless it was written from a later position of the
   * tombstone's partition (then it is reported as stale). Fails when the server cannot take the deletes.
   */
  readonly remove: (
    keys: ReadonlyArray<DeletedKey>,
    writeConcern: WriteConcernSettings,
  ) => Effect.Effect<DeleteResult, MongoWriteError>
  /** What a write does to a stored document of its key (MONGODB__WRITE_MODEL): a sink's own setting wins. */
  readonly writeModel: WriteModel
  /** With the insert model, what becomes of a record whose key is stored (MONGODB__ON_EXISTING): a sink's own setting wins. */
  readonly onExisting: OnExisting
  readonly ping: Effect.Effect<void, MongoConnectionError>
  /** The duplicate checks' windows, kept in `<collection>_duplicate_windows` (SavedKeys.ts). */
  readonly windows: WindowStore
}

export class MongoDb extends Context.Service<MongoDb, MongoDbShape>()("pipeline/MongoDb") {
  static readonly layer = Layer.effect(
    MongoDb,
    Effect.gen(function* () {
      const { mongodb, pipeline } = yield* AppConfig
      const client = yield* Effect.acquireRelease(
        Effect.tryPromise({
          try: async () => {
            const uri = Redacted.value(mongodb.uri)
            const timeoutMs = Duration.toMillis(mongodb.timeout)
            // Options in the URI win: the driver would let these defaults override them.
            const given = (option: string) => new RegExp(`[?&]${option}=`, "i").test(uri)
            const c = new MongoClient(uri, {
              ...(given("maxPoolSize")
                ? {}
                : { maxPoolSize: Math.max(pipeline.maxWorkers, pipeline.partitionsConcurrency) + 2 }),
              ...(given("serverSelectionTimeoutMS") ? {} : { serverSelectionTimeoutMS: 10_000 }),
              // A server that accepts a connection and never answers is a timeout, not a wait without end.
              ...(given("socketTimeoutMS") ? {} : { socketTimeoutMS: timeoutMs }),
              ...(given("waitQueueTimeoutMS") ? {} : { waitQueueTimeoutMS: timeoutMs }),
              ...(given("connectTimeoutMS") ? {} : { connectTimeoutMS: Math.min(timeoutMs, 10_000) }),
              ...(given("appName") ? {} : { appName: "kafka-mongo-pipeline" }),
            })
            await c.connect()
            return c
          },
          catch: (cause) => new MongoConnectionError({ cause }),
        }),
        // A server that does not answer is left behind: shutdown waits no longer than this.
        (c) =>
          Effect.promise(() => c.close().catch(() => undefined)).pipe(Effect.timeoutOption("10 seconds")),
      )
      const db = client.db(mongodb.database)
      const collection = db.collection<StoredDocument>(mongodb.collection)
      // FerretDB scans the collection for an update filter beyond `{_id}`: there the read before
      // the replace decides alone (MongoSink.ts). A server that does not answer buildInfo is MongoDB.
      const ferretDb = yield* Effect.tryPromise(() => db.admin().command({ buildInfo: 1 })).pipe(
        Effect.map((info) => typeof info.ferretdbVersion === "string"),
        Effect.timeoutOption(mongodb.timeout),
        Effect.map(Option.getOrElse(() => false)),
        Effect.orElseSucceed(() => false),
      )
      const options = {
        replaceBatchSize: mongodb.replaceBatchSize,
        conditionalReplace: !ferretDb,
        locks: new KeyLocks(),
        // Deletes come with tombstones set to delete, and with change events.
        ...(mongodb.onTombstone === "delete" || pipeline.sourceFormat === "debezium"
          ? {
              markers: {
                collection: db.collection<StoredDocument>(`${mongodb.collection}_deletes`),
                prunedAt: 0,
              },
            }
          : {}),
      }
      return MongoDb.of({
        upsert: (documents, writeConcern, writeModel) =>
          upsertAll(collection, documents, writeConcern, { ...options, writeModel }),
        remove: (keys, writeConcern) => deleteAll(collection, keys, writeConcern, options),
        writeModel: mongodb.writeModel,
        onExisting: mongodb.onExisting,
        windows: windowStore(db.collection<StoredKeys>(`${mongodb.collection}_duplicate_windows`)),
        ping: Effect.tryPromise({
          try: () => db.command({ ping: 1 }),
          catch: (cause) => new MongoConnectionError({ cause }),
        }).pipe(Effect.asVoid),
      })
    }),
  )
}
