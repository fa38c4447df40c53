/**
 * The benchmark's data: the generator's mixed stream (10% invalid, 5% duplicates) as Kafka
 * messages, and the documents the shipped pipeline (config/pipeline.yaml) stores for it, made
 * with the pipeline's own task library so that the sink baseline writes the same documents.
 *
 * Half of the generator's duplicates repeat a record drawn from the whole history. Those
 * further back than the duplicate check's window (100,000 keys) reach MongoDB as E11000 and
 * take the sink's replace-by-_id path. By default the stream leaves out duplicates further back
 * than half the window, so that every duplicate is caught by the duplicate check and no
 * document is replaced; `--far-duplicates` keeps them.
 */
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { Result } from "effect"
import type { Message } from "kafkajs"
import { parsePipelineText } from "../../src/Config/PipelineFile.js"
import { type PipelineSpec, validatePipelineSpec } from "../../src/Config/PipelineSpec.js"
import { isSinkTask } from "../../src/Config/SinkKinds.js"
import { getPath, parsePath } from "../../src/Domain/Path.js"
import {
  isJsonObject,
  type JsonObject,
  keyOf,
  makeRecord,
  type PipelineRecord,
} from "../../src/Domain/Record.js"
import {
  defaultRecordOptions,
  encode,
  type GeneratedRecord,
  generate,
  type RecordOptions,
} from "../../src/Generator/Records.js"
import { makeTransform } from "../../src/Tasks/Library.js"
import { root } from "./Infra.js"

export const recordOptions = (seed: number): RecordOptions => ({ ...defaultRecordOptions, seed })

/**
 * `count` records of the stream from index `start` on, without the duplicates that repeat a
 * record more than `farLimit` records back (undefined: keep everything). Two kept duplicates of
 * one record are then never more than `farLimit` apart either, so the window catches the second.
 */
export function* benchRecords(
  seed: number,
  start: number,
  count: number,
  farLimit: number | undefined,
): Generator<GeneratedRecord> {
  let emitted = 0
  for (const record of generate(recordOptions(seed), start)) {
    if (emitted >= count) return
    const origin = record.originalIndex
    const far = farLimit !== undefined && origin !== undefined && record.index - origin > farLimit
    if (far) continue
    emitted++
    yield record
  }
}

/** As the generator's Kafka output sends it: keyed by event_id, the defect (if any) as a header. */
export const messageOf = (record: GeneratedRecord, timestamp?: number): Message => ({
  key: record.key,
  value: encode(record),
  ...(record.defect === undefined ? {} : { headers: { "x-defect": record.defect } }),
  ...(timestamp === undefined ? {} : { timestamp: String(timestamp) }),
})

/** Whether a message's value parses as a JSON object: what baseline C stores in MongoDB. */
export const parsesAsObject = (record: GeneratedRecord): boolean => {
  if (!(record.value instanceof Uint8Array)) return true
  try {
    const value: unknown = JSON.parse(encode(record).toString("utf8"))
    return typeof value === "object" && value !== null && !Array.isArray(value)
  } catch {
    return false
  }
}

export const shippedSpec = (): PipelineSpec => {
  const file = join(root, "config", "pipeline.yaml")
  const parsed = Result.getOrThrow(parsePipelineText(readFileSync(file, "utf8"), "yaml"))
  return Result.getOrThrow(validatePipelineSpec(parsed, file))
}

/** Half the shipped duplicate check's window, in records: the default limit of `benchRecords`. */
export const farDuplicateLimit = (spec: PipelineSpec): number => {
  for (const task of spec.tasks) {
    if (task.type === "duplicate_check") return Math.floor(task.settings.window.maxKeys / 2)
  }
  return 50_000
}

/** The write concern of the shipped pipeline's MongoDB sink. */
export const sinkWriteConcern = (spec: PipelineSpec): { w: number | "majority"; journal: boolean } => {
  for (const task of spec.tasks) {
    if (task.type === "mongodb_sink") return { w: task.settings.writeConcern, journal: task.settings.journal }
  }
  return { w: "majority", journal: true }
}

export interface StoredDocument extends JsonObject {
  _id: string
}

/**
 * The documents the pipeline writes for the first `count` records: each message parsed as the
 * service parses it, the five transforms run batch by batch (one duplicate window for the
 * whole stream), valid records stored under their key as `_id`.
 */
export const sinkDocuments = (
  seed: number,
  count: number,
  batchSize: number,
  farLimit: number | undefined,
): StoredDocument[] => {
  const spec = shippedSpec()
  const chain = spec.tasks.filter((task) => !isSinkTask(task)).map((task) => makeTransform(task))
  const keyPaths = spec.key.map(parsePath)
  const documents: StoredDocument[] = []
  let batch: PipelineRecord[] = []
  const flush = () => {
    let records: ReadonlyArray<PipelineRecord> = batch
    for (const transform of chain) records = transform(records).records
    for (const record of records) {
      if (record.status !== "valid") continue
      const key = record.key ?? keyOf(keyPaths.map((p) => getPath(record.value, p)))
      if (typeof key === "string") documents.push({ ...record.value, _id: key })
    }
    batch = []
  }
  for (const generated of benchRecords(seed, 0, count, farLimit)) {
    let value: unknown
    try {
      value = JSON.parse(encode(generated).toString("utf8"))
    } catch {
      continue
    }
    if (isJsonObject(value)) batch.push(makeRecord(String(generated.index), value))
    if (batch.length === batchSize) flush()
  }
  if (batch.length > 0) flush()
  return documents
}
