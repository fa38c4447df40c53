/**
 * The duplicate check's window kept beside the documents: each batch's remembered keys are one
 * document in the `<collection>_duplicate_windows` collection, written before the batch's offsets
 * are committed, and read back when a partition is assigned (after a restart, a crash or a move
 * to another instance), so that the window a partition is checked against does not depend on
 * which process held it.
 *
 * Every command filters on the exact `_id` or scans this small collection: it holds at most the
 * keys of one TTL and about `maxKeys` offsets per partition (older ones are deleted), and
 * FerretDB scans for any other filter anyway (../shared/INFRA.md).
 */
import { Data, Effect } from "effect"
import type { Collection } from "mongodb"
import { type ErrorKind, isRetryableKind } from "../Domain/ErrorKind.js"
import { describe, kindOfMongoError } from "./Errors.js"

/** Whose window: the consumer group, the duplicate check task, and the source partition. */
export interface WindowScope {
  readonly group: string
  readonly task: string
  readonly topic: string
  readonly partition: number
}

/** The keys a duplicate check remembered from one batch, with their offsets and when. */
export interface SavedKeys {
  /** The batch's first and last offsets. */
  readonly first: string
  readonly last: string
  /** Milliseconds since the epoch. */
  readonly at: number
  readonly keys: ReadonlyArray<string>
  readonly offsets: ReadonlyArray<string>
}

/** What may be forgotten: keys saved before `since` (past the TTL) or from batches ending before `offset`. */
export interface Forget {
  readonly since: number
  readonly offset: number
}

export interface StoredKeys extends WindowScope {
  _id: string
  first: number
  last: number
  at: Date
  keys: Array<string>
  offsets: Array<string>
}

export class WindowStoreError extends Data.TaggedError("WindowStoreError")<{
  readonly action: "save" | "load"
  readonly kind: ErrorKind
  readonly cause: unknown
}> {
  get retryable(): boolean {
    return isRetryableKind(this.kind)
  }
  override get message() {
    return `${this.action === "save" ? "saving" : "reading"} the duplicate check's window in MongoDB failed: ${describe(this.cause)}`
  }
}

const scopeFilter = (scope: WindowScope) => ({
  group: scope.group,
  task: scope.task,
  topic: scope.topic,
  partition: scope.partition,
})

// Old entries of a partition are deleted on every load and after this many saves of it.
const pruneEvery = 64

export interface WindowStore {
  /** Saves one batch's keys (again, if the batch is read again). */
  readonly save: (
    scope: WindowScope,
    saved: SavedKeys,
    forget: Forget,
  ) => Effect.Effect<void, WindowStoreError>
  /** The saved keys of the scope, in offset order, after deleting what may be forgotten. */
  readonly load: (
    scope: WindowScope,
    forget: Forget,
  ) => Effect.Effect<ReadonlyArray<SavedKeys>, WindowStoreError>
}

export const windowStore = (collection: Collection<StoredKeys>): WindowStore => {
  const saves = new Map<string, number>()

  const prune = (scope: WindowScope, forget: Forget) =>
    collection.deleteMany({
      ...scopeFilter(scope),
      $or: [{ at: { $lt: new Date(forget.since) } }, { last: { $lt: forget.offset } }],
    })

  const attempt = <A>(action: "save" | "load", run: () => Promise<A>) =>
    Effect.tryPromise({
      try: run,
      catch: (cause) => new WindowStoreError({ action, kind: kindOfMongoError(cause), cause }),
    })

  return {
    save: (scope, saved, forget) =>
      attempt("save", async () => {
        const id = `${scope.group}/${scope.task}/${scope.topic}/${scope.partition}/${saved.first}`
        await collection.replaceOne(
          { _id: id },
          {
            ...scopeFilter(scope),
            first: Number(saved.first),
            last: Number(saved.last),
            at: new Date(saved.at),
            keys: [...saved.keys],
            offsets: [...saved.offsets],
          },
          { upsert: true },
        )
        const name = `${scope.group}/${scope.task}/${scope.topic}/${scope.partition}`
        const count = (saves.get(name) ?? 0) + 1
        saves.set(name, count % pruneEvery)
        if (count === pruneEvery) await prune(scope, forget)
      }),

    load: (scope, forget) =>
      attempt("load", async () => {
        await prune(scope, forget)
        const found = await collection.find(scopeFilter(scope)).toArray()
        return found
          .sort((a, b) => a.first - b.first)
          .map((d) => ({
            first: String(d.first),
            last: String(d.last),
            at: d.at.getTime(),
            keys: d.keys,
            offsets: d.offsets,
          }))
      }),
  }
}
