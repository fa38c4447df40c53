/**
 * The duplicate check's window kept beside the documents: each batch's remembered keys are one
 * document in the `<collection>_duplicate_windows` collection, written before the batch's offsets
 * are committed, and read back when a partition is assigned (after a restart, a crash or a move
 * to another instance), so that the window a partition is checked against does not depend on
 * which process held it.
 *
 * Every write and delete filters on the exact `_id` (FerretDB scans the collection for any other
 * filter: ../shared/INFRA.md); only the read-back when a partition is assigned reads by partition,
 * over this small collection: it holds at most the keys of one TTL and about `maxKeys` offsets
 * per partition (older ones are deleted).
 */
import { Data, Effect } from "effect"
import { type Collection, MongoBulkWriteError } from "mongodb"
import { type ErrorKind, isRetryableKind } from "../Domain/ErrorKind.js"
import { describe, kindOfMongoError } from "./Errors.js"
import { writeErrorsOf } from "./MongoSink.js"

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
  /** The keys the batch deleted (tombstones, change events' deletes), with their offsets. */
  readonly deleted?: ReadonlyArray<string>
  readonly deletedOffsets?: ReadonlyArray<string>
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
  deleted?: Array<string>
  deletedOffsets?: Array<string>
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
// Saves waiting while one is being written go in the next write together, this many at most:
// FerretDB writes an insert of up to 100 documents in one transaction.
const saveGroup = 100
// Deletes by `_id` per command (FerretDB holds a connection per statement until the command ends).
const deleteGroup = 25

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

interface Known {
  readonly id: string
  readonly at: number
  readonly last: number
}

interface Waiting {
  readonly scope: WindowScope
  readonly document: StoredKeys
  readonly forget: Forget
  readonly done: (error?: unknown) => void
}

const nameOf = (scope: WindowScope) => `${scope.group}/${scope.task}/${scope.topic}/${scope.partition}`

const forgotten = (known: { readonly at: number; readonly last: number }, forget: Forget) =>
  known.at < forget.since || known.last < forget.offset

/**
 * Saves are written in groups: the first goes at once, and those that come while it is being
 * written go together in the next insert (one command and one transaction for many batches),
 * so that small batches at a low rate do not each cost the server a write of their own. Old
 * entries are deleted by `_id`, the ids known from the saves and the last read-back.
 */
export const windowStore = (collection: Collection<StoredKeys>): WindowStore => {
  const known = new Map<string, Array<Known>>()
  const saves = new Map<string, number>()
  let waiting: Array<Waiting> = []
  let writing = false

  const deleteIds = async (ids: ReadonlyArray<string>) => {
    for (let i = 0; i < ids.length; i += deleteGroup) {
      await collection.bulkWrite(
        ids.slice(i, i + deleteGroup).map((id) => ({ deleteOne: { filter: { _id: id } } })),
        { ordered: false },
      )
    }
  }

  const prune = async (scope: WindowScope, forget: Forget) => {
    const name = nameOf(scope)
    const list = known.get(name) ?? []
    known.set(
      name,
      list.filter((k) => !forgotten(k, forget)),
    )
    await deleteIds(list.filter((k) => forgotten(k, forget)).map((k) => k.id))
  }

  /** Inserts the documents; those saved before (a batch read again) are replaced by `_id`. */
  const write = async (documents: ReadonlyArray<StoredKeys>) => {
    try {
      await collection.insertMany([...documents], { ordered: false })
    } catch (cause) {
      const errors = cause instanceof MongoBulkWriteError ? writeErrorsOf(cause) : []
      if (errors.length === 0 || errors.some((e) => e.code !== 11000)) throw cause
      for (const e of errors) {
        const document = documents[e.index]!
        await collection.replaceOne({ _id: document._id }, document, { upsert: true })
      }
    }
  }

  const drain = async () => {
    writing = true
    while (waiting.length > 0) {
      const group = waiting.slice(0, saveGroup)
      waiting = waiting.slice(saveGroup)
      try {
        await write(group.map((w) => w.document))
        const pruning = new Map<string, Waiting>()
        for (const w of group) {
          const name = nameOf(w.scope)
          const list = known.get(name) ?? []
          list.push({ id: w.document._id, at: w.document.at.getTime(), last: w.document.last })
          known.set(name, list)
          const count = (saves.get(name) ?? 0) + 1
          saves.set(name, count % pruneEvery)
          if (count === pruneEvery) pruning.set(name, w)
        }
        for (const w of pruning.values()) await prune(w.scope, w.forget)
        for (const w of group) w.done()
      } catch (cause) {
        for (const w of group) w.done(cause)
      }
    }
    writing = false
  }

  const attempt = <A>(action: "save" | "load", run: () => Promise<A>) =>
    Effect.tryPromise({
      try: run,
      catch: (cause) => new WindowStoreError({ action, kind: kindOfMongoError(cause), cause }),
    })

  return {
    save: (scope, saved, forget) =>
      attempt(
        "save",
        () =>
          new Promise<void>((resolve, reject) => {
            waiting.push({
              scope,
              forget,
              document: {
                _id: `${nameOf(scope)}/${saved.first}`,
                ...scopeFilter(scope),
                first: Number(saved.first),
                last: Number(saved.last),
                at: new Date(saved.at),
                keys: [...saved.keys],
                offsets: [...saved.offsets],
                ...(saved.deleted === undefined
                  ? {}
                  : { deleted: [...saved.deleted], deletedOffsets: [...(saved.deletedOffsets ?? [])] }),
              },
              done: (error) => (error === undefined ? resolve() : reject(error)),
            })
            if (!writing) void drain()
          }),
      ),

    load: (scope, forget) =>
      attempt("load", async () => {
        const found = await collection.find(scopeFilter(scope)).toArray()
        await deleteIds(
          found.filter((d) => forgotten({ at: d.at.getTime(), last: d.last }, forget)).map((d) => d._id),
        )
        const kept = found
          .filter((d) => !forgotten({ at: d.at.getTime(), last: d.last }, forget))
          .sort((a, b) => a.first - b.first)
        known.set(
          nameOf(scope),
          kept.map((d) => ({ id: d._id, at: d.at.getTime(), last: d.last })),
        )
        return kept.map((d) => ({
          first: String(d.first),
          last: String(d.last),
          at: d.at.getTime(),
          keys: d.keys,
          offsets: d.offsets,
          ...(d.deleted === undefined ? {} : { deleted: d.deleted, deletedOffsets: d.deletedOffsets ?? [] }),
        }))
      }),
  }
}
