/**
 * Command-line options of `scripts/generate.ts`, with defaults from the environment
 * (TEST_DATA__*, KAFKA__*); argv wins. A pure function of (argv, env), so every bad input
 * has a test; a bad value is a UsageError naming the option, which exits with code 2.
 */
import { Result } from "effect"
import {
  type Flags,
  numberIn,
  oneOf,
  type Source,
  tokenize,
  UsageError,
  type ValueOption,
} from "./Options/Argv.js"
import { type Env, type OutputTarget, resolveOutput } from "./Options/Target.js"
import { defaultRecordOptions, ONE_MIB, type Pattern, type RecordOptions } from "./Records.js"

export { type Env, type OutputTarget, UsageError }

export interface Options {
  readonly records: RecordOptions
  /** Records per second; 0 = as fast as the output takes them. */
  readonly rate: number
  /** Undefined = unlimited. */
  readonly total: number | undefined
  readonly output: OutputTarget
  /** Messages per write or Kafka send. */
  readonly batchSize: number
}

export type Command = { readonly _tag: "Help" } | { readonly _tag: "Run"; readonly options: Options }

export const usage = `Usage: npm run generate -- [options]

  --rate N               records per second, 0 = as fast as possible   [TEST_DATA__RATE, 10]
  --total N              records to produce, blank = unlimited          [TEST_DATA__TOTAL_RECORDS, unlimited]
  --pattern P            valid | invalid | mixed                        [TEST_DATA__PATTERN, mixed]
  --invalid-ratio R      share of invalid records in a mixed stream     [TEST_DATA__INVALID_RATIO, 0.1]
  --duplicate-ratio R    share of re-sent earlier valid records         [0.05]
  --malformed-ratio R    share of messages that are not JSON            [0]
  --oversized-ratio R    share of oversized messages                    [0]
  --oversized-bytes N    size of each oversized message                 [${ONE_MIB + 1}]
  --output O             console | kafka | file                         [console]
  --bootstrap-servers S  comma-separated brokers (kafka)                [KAFKA__BOOTSTRAP_SERVERS]
  --topic T              target topic (kafka)                           [KAFKA__TOPIC_SOURCE]
  --partitions-key F     field (dotted path) whose value keys messages  [event_id]
  --file PATH            JSON-lines file (file)
  --seed N               seed (0..4294967295); same seed, same records  [random]
  --batch-size N         messages per send or write                     [500]
  --help                 this text

Ratios are shares of all messages, in [0, 1]. Records go to stdout (console) one JSON per line;
progress and the summary go to stderr. KAFKA__API_KEY / KAFKA__API_SECRET enable SASL_SSL.`

/** Parses argv (without node and the script) with environment defaults. */
export const parse = (
  argv: ReadonlyArray<string>,
  env: Env,
  randomSeed: () => number,
): Result.Result<Command, UsageError> => {
  const flags = tokenize(argv)
  if (flags instanceof UsageError) return Result.fail(flags)
  if (flags.help) return Result.succeed({ _tag: "Help" })
  const options = resolve(flags.values, env, randomSeed)
  return options instanceof UsageError ? Result.fail(options) : Result.succeed({ _tag: "Run", options })
}

const resolve = (values: Flags["values"], env: Env, randomSeed: () => number): Options | UsageError => {
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
    return s === undefined ? fallback : numberIn(s, min, max, int)
  }
  const ratio = (option: ValueOption, fallback: number, variable?: string) =>
    num(option, fallback, 0, 1, false, variable)

  const rate = num("rate", 10, 0, Number.MAX_SAFE_INTEGER, false, "TEST_DATA__RATE")
  if (rate instanceof UsageError) return rate
  const totalSource = source("total", "TEST_DATA__TOTAL_RECORDS")
  const total =
    totalSource === undefined || ["", "unlimited"].includes(totalSource.raw.trim())
      ? undefined
      : numberIn(totalSource, 0, Number.MAX_SAFE_INTEGER, true)
  if (total instanceof UsageError) return total
  const patternSource = source("pattern", "TEST_DATA__PATTERN")
  const pattern =
    patternSource === undefined ? "mixed" : oneOf<Pattern>(patternSource, ["valid", "invalid", "mixed"])
  if (pattern instanceof UsageError) return pattern
  const invalidRatio = ratio("invalid-ratio", defaultRecordOptions.invalidRatio, "TEST_DATA__INVALID_RATIO")
  if (invalidRatio instanceof UsageError) return invalidRatio
  const duplicateRatio = ratio("duplicate-ratio", defaultRecordOptions.duplicateRatio)
  if (duplicateRatio instanceof UsageError) return duplicateRatio
  const malformedRatio = ratio("malformed-ratio", 0)
  if (malformedRatio instanceof UsageError) return malformedRatio
  const oversizedRatio = ratio("oversized-ratio", 0)
  if (oversizedRatio instanceof UsageError) return oversizedRatio
  const oversizedBytes = num("oversized-bytes", ONE_MIB + 1, 1024, 64 * ONE_MIB, true)
  if (oversizedBytes instanceof UsageError) return oversizedBytes
  const seed = num("seed", Number.NaN, 0, 4_294_967_295, true)
  if (seed instanceof UsageError) return seed
  const batchSize = num("batch-size", 500, 1, 10_000, true)
  if (batchSize instanceof UsageError) return batchSize
  const output = resolveOutput(source, env)
  if (output instanceof UsageError) return output

  const shares = duplicateRatio + malformedRatio + oversizedRatio + (pattern === "mixed" ? invalidRatio : 0)
  if (shares > 1 + 1e-9)
    return new UsageError({
      option: "--duplicate-ratio",
      message: `--duplicate-ratio + --malformed-ratio + --oversized-ratio${pattern === "mixed" ? " + --invalid-ratio" : ""} is ${shares}, more than 1`,
    })

  return {
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
  }
}
