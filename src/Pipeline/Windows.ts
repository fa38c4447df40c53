/**
 * The duplicate checks' durable windows (`window.durable`, the default) at run time:
 * - before a batch runs its transforms, the windows hold its partition's saved keys: they are
 *   read back from MongoDB once per partition and group generation (a restart, a crash, a
 *   rebalance: whoever held the partition before saved them), so a duplicate whose first copy
 *   was committed by another process is still a duplicate;
 * - the keys a batch leaves in a window (its valid, keyed records after the duplicate check)
 *   are saved beside the documents before the batch's offsets are committed (Delivery.ts), so
 *   nothing committed is ever missing from what is read back.
 * A key saved twice (a batch read again, or a duplicate kept by `mark`/`keep`) is read back
 * once, at its first offset. A save or read that keeps failing for a transient reason stalls the
 * partition like a write; one of any other kind is logged (ERROR) and the batch goes on with the
 * window it has: the window is a check, not the data.
 */
import { Clock, Deferred, Effect } from "effect"
import type { PipelineRecord } from "../Domain/Record.js"
import type { Batch } from "../Kafka/KafkaSource.js"
import type { SavedKeys, WindowScope, WindowStore } from "../Mongo/SavedKeys.js"
import type { KeyWindow } from "../Tasks/KeyWindow.js"
import type { Tombstone } from "./Parse.js"
import type { makeWrites, WriteScope } from "./Writes.js"

/**
 * Notes the batch's deletes in every duplicate check's window before its transforms run (a
 * deleted key is a first copy again after its delete); the returned effect drops the notes once
 * they have run.
 */
export const noteDeletes = (
  windows: ReadonlyArray<KeyWindow>,
  tombstones: ReadonlyArray<Tombstone>,
): Effect.Effect<void> => {
  if (windows.length === 0 || tombstones.length === 0) return Effect.void
  const now = Date.now()
  for (const window of windows) for (const t of tombstones) window.noteDelete(t.key, t.message.offset, now)
  return Effect.sync(() => {
    for (const window of windows) for (const t of tombstones) window.clearDeleted(t.key, t.message.offset)
  })
}

/** A duplicate check whose window is kept beside the documents. */
export interface DurableWindow {
  readonly task: string
  readonly window: KeyWindow
}

/** What one batch leaves in the windows, to be saved before its offsets are committed. */
export interface WindowKeys {
  readonly task: string
  readonly window: KeyWindow
  readonly saved: SavedKeys
}

export interface Windows {
  /** Waits until the batch's partition's saved keys are in every window. */
  readonly ready: (batch: Batch, scope: WriteScope) => Effect.Effect<void>
  /** The keys the batch leaves in each window, from each duplicate check's output. */
  readonly keysOf: (
    batch: Batch,
    output: (task: string) => ReadonlyArray<PipelineRecord>,
    tombstones: ReadonlyArray<Tombstone>,
  ) => Effect.Effect<ReadonlyArray<WindowKeys>>
  /** Saves them; returns once they are stored (or could not be, which is logged). */
  readonly save: (batch: Batch, scope: WriteScope, keys: ReadonlyArray<WindowKeys>) => Effect.Effect<void>
}

export const noWindows: Windows = {
  ready: () => Effect.void,
  keysOf: () => Effect.succeed([]),
  save: () => Effect.void,
}

export const makeWindows = (options: {
  readonly windows: ReadonlyArray<DurableWindow>
  readonly store: WindowStore
  readonly group: string
  readonly writes: ReturnType<typeof makeWrites>
}): Windows => {
  const { windows, store, group, writes } = options
  if (windows.length === 0) return noWindows
  // Per partition: the generation its saved keys were read back in, and when that is done.
  const loads = new Map<number, { readonly generation: number; readonly done: Deferred.Deferred<void> }>()

  const scopeOf = (batch: Batch, task: string): WindowScope => ({
    group,
    task,
    topic: batch.topic,
    partition: batch.partition,
  })

  /** What may be forgotten: past the TTL, or more than `maxKeys` offsets before `offset`. */
  const forgetFor = (window: KeyWindow, now: number, offset: string) => ({
    since: now - window.ttlMs,
    offset: Number(offset) - window.maxKeys,
  })

  /** Gives up on a failure that is not transient (after its retries): logged, the batch goes on. */
  const orLogged = (what: string, effect: Effect.Effect<void, unknown>) =>
    effect.pipe(
      Effect.catchCause((cause) =>
        Effect.logError(`${what}; the duplicate check goes on with the keys it holds`, cause),
      ),
    )

  const load = (batch: Batch, scope: WriteScope) =>
    Effect.forEach(
      windows,
      ({ task, window }) =>
        Effect.gen(function* () {
          const since = yield* Clock.currentTimeMillis
          const saved = yield* writes.retrying(
            "reading the duplicate window from MongoDB",
            scope,
            since,
            () => store.load(scopeOf(batch, task), forgetFor(window, Date.now(), batch.firstOffset)),
          )
          // The duplicate check's own clock (wall time), whatever the Effect clock says.
          const now = Date.now()
          let keys = 0
          for (const batchKeys of saved) {
            // A batch's keys and deletes in offset order: a key deleted after its first copy is
            // forgotten, and a copy after the delete is remembered again.
            const deleted = batchKeys.deleted ?? []
            const deletedOffsets = batchKeys.deletedOffsets ?? []
            let d = 0
            for (let i = 0; i <= batchKeys.keys.length; i++) {
              const offset = i < batchKeys.keys.length ? Number(batchKeys.offsets[i]!) : Infinity
              for (; d < deleted.length && Number(deletedOffsets[d]!) < offset; d++)
                window.forgetBefore(deleted[d]!, deletedOffsets[d]!, now)
              if (i === batchKeys.keys.length) break
              window.restore(batchKeys.keys[i]!, batchKeys.offsets[i]!, batchKeys.at, now)
              keys++
            }
          }
          yield* Effect.logDebug("duplicate window read back").pipe(
            Effect.annotateLogs({ task, partition: batch.partition, batches: saved.length, keys }),
          )
        }).pipe((effect) => orLogged(`reading task ${task}'s saved keys failed`, effect)),
      { discard: true },
    )

  return {
    ready: (batch, scope) =>
      Effect.gen(function* () {
        const known = loads.get(batch.partition)
        if (known !== undefined && known.generation === batch.generation)
          return yield* Deferred.await(known.done)
        const done = yield* Deferred.make<void>()
        loads.set(batch.partition, { generation: batch.generation, done })
        yield* load(batch, scope).pipe(Effect.ensuring(Deferred.succeed(done, undefined)))
      }),

    keysOf: (batch, output, tombstones) =>
      Effect.sync(() => {
        const at = Date.now()
        return windows.flatMap(({ task, window }) => {
          const keys: Array<string> = []
          const offsets: Array<string> = []
          for (const record of output(task)) {
            if (record.status !== "valid" || record.key === undefined) continue
            keys.push(record.key)
            offsets.push(record.offset)
          }
          if (keys.length === 0 && tombstones.length === 0) return []
          const saved: SavedKeys =
            tombstones.length === 0
              ? { first: batch.firstOffset, last: batch.lastOffset, at, keys, offsets }
              : {
                  first: batch.firstOffset,
                  last: batch.lastOffset,
                  at,
                  keys,
                  offsets,
                  deleted: tombstones.map((t) => t.key),
                  deletedOffsets: tombstones.map((t) => t.message.offset),
                }
          return [{ task, window, saved }]
        })
      }),

    save: (batch, scope, keys) =>
      Effect.forEach(
        keys,
        ({ task, window, saved }) =>
          Effect.flatMap(Clock.currentTimeMillis, (since) =>
            writes.retrying("saving the duplicate window to MongoDB", scope, since, () =>
              store.save(scopeOf(batch, task), saved, forgetFor(window, Date.now(), batch.lastOffset)),
            ),
          ).pipe((effect) => orLogged(`saving task ${task}'s keys failed`, effect)),
        { concurrency: "unbounded", discard: true },
      ),
  }
}
