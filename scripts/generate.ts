/**
 * Test data for the pipeline: `npm run generate -- --help`. Records go to stdout, a file or a
 * Kafka topic; progress and the summary to stderr. The generation itself lives in
 * src/Generator so tests and benchmarks use the same records.
 */
import { NodeRuntime } from "@effect/platform-node"
import { readEnvironment } from "../src/Config/AppConfig.js"
import { main, teardown } from "../src/Generator/Cli.js"

// The service's environment: a .env file (or ENV_FILE) supplies defaults, the real environment wins.
NodeRuntime.runMain(
  main(process.argv.slice(2), readEnvironment(), {
    out: (text) => process.stdout.write(text),
    err: (text) => process.stderr.write(text),
    live: process.stderr.isTTY === true,
  }),
  { disableErrorReporting: true, teardown },
)
