/**
 * `npm run bench -- [e2e|dag|tasks|processor|headers|produce-encoding|fetch-memory|mongo-writes|write-models] [options]`: the end-to-end benchmark
 * against the local stack (the default; see bench/README.md), or one of the others, which run as
 * they are with the arguments given (`npm run bench -- tasks 100000 100 5`).
 */
import { spawnSync } from "node:child_process"
import { join } from "node:path"
import { usage as e2eUsage } from "./e2e/Options.js"
import { runE2e } from "./e2e.js"

const usage = `usage: npm run bench -- [e2e|dag|tasks|processor|headers|produce-encoding|fetch-memory|mongo-writes|write-models] [options]

  e2e     Kafka -> pipeline -> MongoDB + Kafka against the local stack, with the three baselines (default)
          options: npm run bench -- e2e --help
  dag     DAG engine overhead per batch (bench/dag.ts [runs-per-round] [rounds])
  tasks   task library throughput (bench/tasks.ts [records] [batch-size] [rounds])
  processor
          CPU per record of the batch processor in-process, its clients left out
          (bench/processor.ts [records-per-round] [rounds])
  headers kafkajs' record decoder with N headers, patched vs. the original quadratic fold
          (bench/headers.ts [rounds] [min-ms-per-round] [largest-N])
  produce-encoding
          kafkajs' producer grouping and encoding a send of sink-like messages, in-process, optionally
          beside another copy of kafkajs (bench/produceEncoding.ts [--baseline <kafkajs dir>] [--codec lz4])
  fetch-memory
          memory of fetches of small messages: in-process decoding, then the service draining
          1,000,000 of them with the default and the old fetch sizes (npm run bench -- fetch-memory --help)
  mongo-writes
          MongoDB writes with source positions (monotonic) and with the duplicate window saved,
          beside the write before them (bench/mongoWrites.ts [documents] [rounds])
  write-models
          MONGODB__WRITE_MODEL replace, merge and insert over a plain stream and a Debezium change
          stream, as ratios to replace (bench/writeModels.ts [messages] [rounds])

Profiles, memory composition and I/O timings of the service: bench/investigate/README.md`

const micro = (file: string, args: ReadonlyArray<string>): number => {
  const r = spawnSync(process.execPath, ["--import", "tsx", join(import.meta.dirname, file), ...args], {
    stdio: "inherit",
  })
  return r.status ?? 1
}

const main = async (argv: ReadonlyArray<string>): Promise<number> => {
  const [first, ...rest] = argv
  switch (first) {
    case "dag":
      return micro("dag.ts", rest)
    case "tasks":
      return micro("tasks.ts", rest)
    case "processor":
      return micro("processor.ts", rest)
    case "headers":
      return micro("headers.ts", rest)
    case "produce-encoding":
      return micro("produceEncoding.ts", rest)
    case "fetch-memory":
      return micro("fetchMemory.ts", rest)
    case "mongo-writes":
      return micro("mongoWrites.ts", rest)
    case "write-models":
      return micro("writeModels.ts", rest)
    case "e2e":
      return runE2e(rest)
    case "help":
    case "--help":
    case "-h":
      process.stdout.write(`${usage}\n\n${e2eUsage}\n`)
      return 0
    default:
      return runE2e(argv)
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`bench: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`)
    process.exit(1)
  },
)
