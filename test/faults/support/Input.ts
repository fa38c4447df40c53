/**
 * The input every fault scenario runs over, and what a correct run must leave behind.
 *
 * The collection already holds 20,000 documents when a run starts: the valid records of the
 * generator's stream before `start`, keyed by their event_id like the service keys them, as an
 * earlier run of the service over that history would have left them (their content is the
 * generated record as it is, not the pipeline's output: what matters is that they are there).
 * The run then reads the stream on from `start`. Half of the generator's duplicates repeat a
 * record far back, most of them one of the preloaded documents: the service, whose duplicate
 * window starts empty, takes those as valid, replaces the document by `_id` and sends the key
 * to the sink topic once more.
 */
import {
  defaultRecordOptions,
  type GeneratedRecord,
  generate,
  type RecordOptions,
} from "../../../src/Generator/Records.js"

/**
 * The generator's default mix (10% invalid, 5% duplicates, near and far) plus 2% malformed
 * JSON: the default has no malformed messages (malformedRatio 0), and the parse path must see
 * some under every fault.
 */
export const recordOptions = (seed: number): RecordOptions => ({
  ...defaultRecordOptions,
  seed,
  malformedRatio: 0.02,
})

export interface PreloadedDocument {
  readonly _id: string
  readonly [field: string]: unknown
}

export interface Input {
  readonly options: RecordOptions
  /** The documents in the collection before a run. */
  readonly preload: ReadonlyArray<PreloadedDocument>
  /** Index of the first record of the run (every record before it is history). */
  readonly start: number
  /** The records a run consumes, in the order they are produced. */
  readonly records: ReadonlyArray<GeneratedRecord>
  /** What a correct run leaves, whatever happened on the way. */
  readonly expected: {
    /** `_id`s in MongoDB: the preload and every valid record of the run. */
    readonly documentIds: ReadonlySet<string>
    /** Distinct keys on the sink topic: the valid records, and the duplicates of preloaded documents. */
    readonly sinkKeys: ReadonlySet<string>
    /** `x-index` of every dead letter: the invalid and malformed records. */
    readonly deadIndexes: ReadonlySet<string>
  }
}

export const makeInput = (seed: number, count: number, preloadCount = 20_000): Input => {
  const options = recordOptions(seed)
  const preload: PreloadedDocument[] = []
  let start = 0
  for (const record of generate(options)) {
    if (preload.length === preloadCount) {
      start = record.index
      break
    }
    if (record.kind === "valid") preload.push({ ...(record.value as object), _id: record.key! })
  }
  const records = [...generate(options, start, count)]
  const valid = records.filter((r) => r.kind === "valid").map((r) => r.key!)
  const repeatsOfHistory = records
    .filter((r) => r.kind === "duplicate" && r.originalIndex! < start)
    .map((r) => r.key!)
  return {
    options,
    preload,
    start,
    records,
    expected: {
      documentIds: new Set([...preload.map((d) => d._id), ...valid]),
      sinkKeys: new Set([...valid, ...repeatsOfHistory]),
      deadIndexes: new Set(
        records
          .filter((r) => r.kind === "invalid" || r.kind === "malformed" || r.kind === "oversized")
          .map((r) => String(r.index)),
      ),
    },
  }
}
