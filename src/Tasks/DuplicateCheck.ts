/**
 * DuplicateCheck: finds records whose key (the values of the key fields) was seen before,
 * within the batch or in recent batches, and removes, marks or only counts them.
 *
 * - `remove`: the record's status becomes "duplicate"; the runtime counts it and writes it
 *   nowhere. `mark`: the flag field is set to true and the record stays valid. `keep`: only
 *   the counter moves.
 * - Recent keys live in a window bounded in size (oldest key evicted first) and in age (a key
 *   is forgotten `ttlSeconds` after it was first seen; seeing it again does not extend that).
 *   Memory is bounded by `maxKeys`.
 * - Only valid records are checked and remembered; a record without a key (a key field
 *   missing, null, empty, not a string or a number, or too long) passes unchecked and is counted as `unkeyed`.
 * - A key deleted (a tombstone or a change event's delete, MONGODB__ON_TOMBSTONE=delete) is
 *   forgotten from that offset on: a record of it after the delete is a first copy again. The
 *   tombstone's message key is compared with the check's key as text, so it holds where the
 *   source is keyed by the record key (as compacted topics are).
 * - A record whose key was remembered from the same source offset is the same message read
 *   again (a batch replayed after a crash or a rebalance), not a duplicate: it passes.
 *   Offsets carry no partition, so the same key at the same offset of two partitions also
 *   passes; the upsert by key in MongoDB still leaves one document.
 *
 * What this guarantees: the window is in memory and, with `window.durable` (the default),
 * also kept beside the documents in MongoDB: each batch's remembered keys are saved before its
 * offsets are committed, and a partition's saved keys are read back into the window when the
 * partition is assigned (Pipeline/Windows.ts). A restart, a crash or a partition that moves to
 * another instance then checks the partition's records against the same keys. Keys are read
 * back per partition: a key seen on two partitions is caught across them only while one
 * instance holds both. With `durable: false` the window is empty after a restart and stays
 * with the process.
 */
import { Effect, Schema } from "effect"
import { getPath, type Path, PathString, parsePath, setPath } from "../Domain/Path.js"
import { defaultMaxKeyBytes, type Json, keyOf, type PipelineRecord } from "../Domain/Record.js"
import { KeyWindow } from "./KeyWindow.js"
import { defineTask, type TaskOptions, type TransformResult } from "./Transform.js"

export { KeyWindow } from "./KeyWindow.js"

export const DuplicateAction = Schema.Literals(["remove", "mark", "keep"])
export type DuplicateAction = typeof DuplicateAction.Type

const PositiveInt = Schema.Int.check(Schema.isGreaterThan(0))
const Positive = Schema.Finite.check(Schema.isGreaterThan(0))

export const DuplicateWindow = Schema.Struct({
  maxKeys: PositiveInt.pipe(Schema.withDecodingDefaultKey(Effect.succeed(100_000))),
  ttlSeconds: Positive.pipe(Schema.withDecodingDefaultKey(Effect.succeed(3_600))),
  /** Kept beside the documents in MongoDB and read back when a partition is assigned (true), or in memory only. */
  durable: Schema.Boolean.pipe(Schema.withDecodingDefaultKey(Effect.succeed(true))),
})

export const DuplicateCheckSettings = Schema.Struct({
  /** Key fields; in a pipeline file they default to the pipeline's `key`. */
  key: Schema.Array(PathString).check(Schema.isMinLength(1)),
  action: DuplicateAction.pipe(Schema.withDecodingDefaultKey(Effect.succeed("remove" as const))),
  /** Field set to true on duplicates when the action is `mark`. */
  markField: PathString.pipe(Schema.withDecodingDefaultKey(Effect.succeed("_duplicate"))),
  window: DuplicateWindow.pipe(Schema.withDecodingDefaultKey(Effect.succeed({}))),
})
export type DuplicateCheckSettings = typeof DuplicateCheckSettings.Type

/** In a pipeline file the duplicate check may leave out its key: it then uses the pipeline's. */
export const DuplicateCheckFileSettings = Schema.Struct({
  ...DuplicateCheckSettings.fields,
  key: Schema.optionalKey(DuplicateCheckSettings.fields.key),
})

export type DuplicateCheckStats = {
  readonly records: number
  readonly duplicates: number
  readonly removed: number
  readonly marked: number
  readonly unkeyed: number
  readonly replayed: number
  readonly evicted: number
  readonly invalidated: number
  readonly skipped: number
}

export const make = (settings: DuplicateCheckSettings, options: TaskOptions = {}) => {
  const now = options.now ?? Date.now
  const keyPaths: ReadonlyArray<Path> = settings.key.map(parsePath)
  const markPath = parsePath(settings.markField)
  const action = settings.action
  const window = new KeyWindow(settings.window.maxKeys, settings.window.ttlSeconds * 1000)
  const keyValues: Array<Json | undefined> = new Array(keyPaths.length)
  const maxKeyBytes = options.maxKeyBytes ?? defaultMaxKeyBytes

  const transform = (records: ReadonlyArray<PipelineRecord>): TransformResult<DuplicateCheckStats> => {
    const at = now()
    const out: Array<PipelineRecord> = new Array(records.length)
    let duplicates = 0
    let removed = 0
    let marked = 0
    let unkeyed = 0
    let replayed = 0
    let evicted = 0
    let skipped = 0

    for (let r = 0; r < records.length; r++) {
      const record = records[r]!
      if (record.status !== "valid") {
        out[r] = record
        skipped++
        continue
      }
      for (let i = 0; i < keyPaths.length; i++) keyValues[i] = getPath(record.value, keyPaths[i]!)
      const key = keyOf(keyValues, maxKeyBytes)
      if (typeof key !== "string") {
        out[r] = record
        unkeyed++
        continue
      }
      let seenAt = window.lookup(key, at)
      // Deleted since its first copy (a tombstone of the key between them): a new first copy.
      if (
        seenAt !== undefined &&
        seenAt !== record.offset &&
        window.deletedBetween(key, seenAt, record.offset)
      ) {
        window.forget(key)
        seenAt = undefined
      }
      if (seenAt === undefined || seenAt === record.offset) {
        if (seenAt === undefined) evicted += window.remember(key, record.offset, at)
        else replayed++
        out[r] = record.key === key ? record : { ...record, key }
        continue
      }
      duplicates++
      if (action === "remove") {
        removed++
        out[r] = { ...record, key, status: "duplicate" }
      } else if (action === "mark") {
        marked++
        const value = { ...record.value }
        setPath(value, markPath, true)
        out[r] = { ...record, key, value }
      } else {
        out[r] = record.key === key ? record : { ...record, key }
      }
    }
    return {
      records: out,
      stats: {
        records: records.length,
        duplicates,
        removed,
        marked,
        unkeyed,
        replayed,
        evicted,
        invalidated: 0,
        skipped,
      },
      levels: { windowKeys: window.size },
    }
  }
  return Object.assign(
    transform,
    settings.window.durable
      ? { window, keyWindow: window, durableWindow: window }
      : { window, keyWindow: window },
  )
}

export const definition = defineTask({
  type: "duplicate_check",
  settings: DuplicateCheckFileSettings,
  withPipelineKey: (settings, key): DuplicateCheckSettings => ({ ...settings, key: settings.key ?? key }),
  make,
  writes: (settings) => (settings.action === "mark" ? [settings.markField] : []),
})
