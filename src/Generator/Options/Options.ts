/**
 * The generator's options: the flags (Flags.ts) with defaults from the environment
 * (TEST_DATA__*, KAFKA__*); a flag wins. `resolve` is a pure function of (values, env), so
 * every bad input has a test, and it reports every problem at once, each naming its flag or
 * variable.
 */
import { Result } from "effect"
import { type DebeziumOptions, defaultDebeziumOptions } from "../Debezium.js"
import { defaultRecordOptions, ONE_MIB, type RecordOptions } from "../Records.js"
import { type Env, type OutputTarget, resolveOutput } from "./Target.js"
import { Problems, type Source, type UsageProblem, type ValueOption, type Values } from "./Values.js"

export { description, flags } from "./Flags.js"
export type { Env, OutputTarget, UsageProblem, Values }

export interface Options {
  readonly records: RecordOptions
  /** Records per second; 0 = as fast as the output takes them. */
  readonly rate: number
  /** Undefined = unlimited. */
  readonly total: number | undefined
  readonly output: OutputTarget
  /** Messages per write or Kafka send. */
  readonly batchSize: number
  /** Set with `--format debezium`: a change stream instead of `records`' order events. */
  readonly debezium?: DebeziumOptions
}

/** Flags that shape only one of the two streams: giving one with the other format is a mistake. */
const PLAIN_ONLY: ReadonlyArray<ValueOption> = [
  "pattern",
  "invalid-ratio",
  "duplicate-ratio",
  "malformed-ratio",
  "oversized-ratio",
  "oversized-bytes",
  "partitions-key",
]
const DEBEZIUM_ONLY: ReadonlyArray<ValueOption> = ["rows", "delete-ratio", "tombstone-ratio", "schemas"]

/** The options from the flags' values and the environment, or every problem found. */
export const resolve = (
  values: Values,
  env: Env,
  randomSeed: () => number,
): Result.Result<Options, ReadonlyArray<UsageProblem>> => {
  const problems = new Problems()
  const source = (option: ValueOption, variable?: string): Source | undefined => {
    const flag = values[option]
    if (flag !== undefined) return { name: `--${option}`, raw: flag }
    const fromEnv = variable === undefined ? undefined : env[variable]
    return fromEnv === undefined ? undefined : { name: variable ?? option, raw: fromEnv }
  }
  const num = (
    option: ValueOption,
    fallback: number,
    min: number,
    max: number,
    int: boolean,
    variable?: string,
  ) => {
    const s = source(option, variable)
    return s === undefined ? fallback : problems.numberIn(s, min, max, int, fallback)
  }
  const ratio = (option: ValueOption, fallback: number, variable?: string) =>
    num(option, fallback, 0, 1, false, variable)

  const rate = num("rate", 10, 0, Number.MAX_SAFE_INTEGER, false, "TEST_DATA__RATE")
  const totalSource = source("total", "TEST_DATA__TOTAL_RECORDS")
  const total =
    totalSource === undefined || ["", "unlimited"].includes(totalSource.raw.trim())
      ? undefined
      : problems.numberIn(totalSource, 0, Number.MAX_SAFE_INTEGER, true, 0)
  const patternSource = source("pattern", "TEST_DATA__PATTERN")
  const pattern =
    patternSource === undefined
      ? "mixed"
      : problems.oneOf(patternSource, ["valid", "invalid", "mixed"], "mixed")
  const ratiosBefore = problems.found.length
  const invalidRatio = ratio("invalid-ratio", defaultRecordOptions.invalidRatio, "TEST_DATA__INVALID_RATIO")
  const duplicateRatio = ratio("duplicate-ratio", defaultRecordOptions.duplicateRatio)
  const malformedRatio = ratio("malformed-ratio", 0)
  const oversizedRatio = ratio("oversized-ratio", 0)
  const ratiosValid = problems.found.length === ratiosBefore
  const oversizedBytes = num("oversized-bytes", ONE_MIB + 1, 1024, 64 * ONE_MIB, true)
  const seed = num("seed", Number.NaN, 0, 4_294_967_295, true)
  const batchSize = num("batch-size", 500, 1, 10_000, true)
  const output = resolveOutput(source, env, problems)
  const formatSource = source("format", "PIPELINE__SOURCE_FORMAT")
  const format =
    formatSource === undefined ? "plain" : problems.oneOf(formatSource, ["plain", "debezium"], "plain")
  const rows = num("rows", defaultDebeziumOptions.rows, 1, 1_000_000_000, true)
  const deleteRatio = ratio("delete-ratio", defaultDebeziumOptions.deleteRatio)
  const tombstoneRatio = ratio("tombstone-ratio", defaultDebeziumOptions.tombstoneRatio)
  const schemasSource = source("schemas")
  const schemas =
    schemasSource === undefined ? false : problems.oneOf(schemasSource, ["true", "false"], "false") === "true"
  for (const option of format === "debezium" ? PLAIN_ONLY : DEBEZIUM_ONLY)
    if (values[option] !== undefined)
      problems.add(`--${option}`, `--${option} does not apply to --format ${format}`)

  // Their sum only means something once each of them is valid.
  const shares = duplicateRatio + malformedRatio + oversizedRatio + (pattern === "mixed" ? invalidRatio : 0)
  if (format === "plain" && ratiosValid && shares > 1 + 1e-9)
    problems.add(
      "--duplicate-ratio",
      `--duplicate-ratio + --malformed-ratio + --oversized-ratio${pattern === "mixed" ? " + --invalid-ratio" : ""} is ${shares}, more than 1`,
    )

  if (problems.found.length > 0 || output === undefined) return Result.fail(problems.found)
  return Result.succeed({
    records: {
      seed: Number.isNaN(seed) ? randomSeed() >>> 0 : seed,
      pattern,
      invalidRatio,
      duplicateRatio,
      malformedRatio,
      oversizedRatio,
      oversizedBytes,
      baseTime: defaultRecordOptions.baseTime,
    },
    rate,
    total,
    output,
    batchSize,
    ...(format === "debezium" ? { debezium: { rows, deleteRatio, tombstoneRatio, schemas } } : {}),
  })
}
