/**
 * Command-line options of the end-to-end benchmark (`npm run bench -- e2e [options]`).
 * Every figure can be made cheaper: fewer records, fewer repetitions, a shorter latency run.
 */

export interface Options {
  readonly records: number
  readonly batchSize: number
  readonly reps: number
  readonly latencySeconds: number
  readonly latencyWarmupSeconds: number
  readonly latencyReps: number
  /** Keep the benchmark's topics and databases instead of deleting them at the end. */
  readonly keep: boolean
  /** Keep the duplicates the shipped duplicate window cannot catch (see Dataset). */
  readonly farDuplicates: boolean
  /** Leave every duplicate out of the stream: the sink ceiling without FerretDB's duplicate-key path. */
  readonly noDuplicates: boolean
  /** Also drain, and measure the latency, with KAFKA__DELIVERY=exactly_once, in the same run. */
  readonly compareDelivery: boolean
  readonly seed: number
  /** Where the JSON and the logs go; default bench/results/e2e-<time>/. */
  readonly out: string | undefined
  /** Extra node flags for the pipeline process (e.g. --max-old-space-size=128). */
  readonly serviceFlags: ReadonlyArray<string>
  /** Extra environment for the pipeline process (a setting to try, MALLOC_ARENA_MAX, ...). */
  readonly serviceEnv: Readonly<Record<string, string>>
}

export const defaults: Options = {
  records: 200_000,
  // The service's default (PIPELINE__BATCH_SIZE).
  batchSize: 500,
  reps: 3,
  latencySeconds: 30,
  latencyWarmupSeconds: 10,
  latencyReps: 3,
  keep: false,
  farDuplicates: false,
  noDuplicates: false,
  compareDelivery: false,
  seed: 1,
  out: undefined,
  serviceFlags: [],
  serviceEnv: {},
}

export const usage = `usage: npm run bench -- e2e [options]

  --records N           records preloaded into the source topic          [${defaults.records}]
  --batch-size N        PIPELINE__BATCH_SIZE, and the baselines' batch    [${defaults.batchSize}]
  --reps N              repetitions of each throughput figure (median)    [${defaults.reps}]
  --latency-seconds S   measured time of each latency run                 [${defaults.latencySeconds}]
  --latency-warmup S    unmeasured load before it                         [${defaults.latencyWarmupSeconds}]
  --latency-reps N      latency runs (median of each percentile)          [${defaults.latencyReps}]
  --keep                keep the topics and databases of the run
  --no-duplicates       leave every duplicate out of the stream (no E11000, no replace path in
                        MongoDB: the sink ceiling is then FerretDB's insert path alone)
  --compare-delivery    also drain and measure the latency with KAFKA__DELIVERY=exactly_once, after
                        each at_least_once drain and latency run, and print the ratios
  --far-duplicates      keep the duplicates further back than half the duplicate window
                        (they reach MongoDB as existing keys and take the sink's replace path)
  --seed N              generator seed                                    [${defaults.seed}]
  --out DIR             result directory                                  [bench/results/e2e-<time>/]
  --service-flags "F"   extra node flags for the pipeline process, e.g. "--max-old-space-size=128"
  --service-env K=V     extra environment for the pipeline process (repeatable),
                        e.g. PIPELINE__PARTITIONS_CONCURRENCY=6 or MALLOC_ARENA_MAX=2
  --help                this text

The local stack (Kafka on 127.0.0.1:9092, FerretDB on 127.0.0.1:27017) is brought up if needed.`

export class UsageError extends Error {
  override readonly name = "UsageError"
}

const integer = (flag: string, text: string | undefined, min: number): number => {
  const n = Number(text)
  if (text === undefined || !/^\d+$/.test(text) || n < min) {
    throw new UsageError(`${flag}: expected a whole number >= ${min}, got ${text ?? "nothing"}`)
  }
  return n
}

export const parseOptions = (argv: ReadonlyArray<string>): Options | "help" => {
  let o: Options = defaults
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!
    const eq = flag.indexOf("=")
    const name = eq < 0 ? flag : flag.slice(0, eq)
    const inline = eq < 0 ? undefined : flag.slice(eq + 1)
    const value = (): string | undefined => inline ?? argv[++i]
    switch (name) {
      case "--help":
      case "-h":
        return "help"
      case "--records":
        o = { ...o, records: integer(flag, value(), 1) }
        break
      case "--batch-size":
        o = { ...o, batchSize: integer(flag, value(), 1) }
        break
      case "--reps":
        o = { ...o, reps: integer(flag, value(), 1) }
        break
      case "--latency-seconds":
        o = { ...o, latencySeconds: integer(flag, value(), 0) }
        break
      case "--latency-warmup":
        o = { ...o, latencyWarmupSeconds: integer(flag, value(), 0) }
        break
      case "--latency-reps":
        o = { ...o, latencyReps: integer(flag, value(), 1) }
        break
      case "--keep":
        o = { ...o, keep: true }
        break
      case "--far-duplicates":
        o = { ...o, farDuplicates: true }
        break
      case "--no-duplicates":
        o = { ...o, noDuplicates: true }
        break
      case "--compare-delivery":
        o = { ...o, compareDelivery: true }
        break
      case "--seed":
        o = { ...o, seed: integer(flag, value(), 0) }
        break
      case "--service-flags": {
        const flags = value()
        if (flags === undefined) throw new UsageError("--service-flags: expected node flags")
        o = { ...o, serviceFlags: flags.split(/\s+/).filter((f) => f !== "") }
        break
      }
      case "--service-env": {
        const pair = value() ?? ""
        const at = pair.indexOf("=")
        if (at <= 0) throw new UsageError(`--service-env: expected NAME=value, got "${pair}"`)
        o = { ...o, serviceEnv: { ...o.serviceEnv, [pair.slice(0, at)]: pair.slice(at + 1) } }
        break
      }
      case "--out": {
        const dir = value()
        if (dir === undefined) throw new UsageError("--out: expected a directory")
        o = { ...o, out: dir }
        break
      }
      default:
        throw new UsageError(`unknown option ${flag}\n\n${usage}`)
    }
  }
  if (o.noDuplicates && o.farDuplicates)
    throw new UsageError(`--no-duplicates and --far-duplicates exclude each other\n\n${usage}`)
  return o
}
