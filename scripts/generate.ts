/**
 * Test data for the pipeline: `npm run generate -- --help`. Records go to stdout, a file or a
 * Kafka topic; progress and the summary to stderr. The generation itself lives in
 * src/Generator so tests and benchmarks use the same records.
 */
import { existsSync, readFileSync } from "node:fs"
import { parseEnv } from "node:util"
import { NodeRuntime } from "@effect/platform-node"
import { main, teardown } from "../src/Generator/Cli.js"

// Like the service: a .env file supplies defaults, the real environment wins.
const env = { ...(existsSync(".env") ? parseEnv(readFileSync(".env", "utf8")) : {}), ...process.env }

NodeRuntime.runMain(
  main(process.argv.slice(2), env, {
    out: (text) => process.stdout.write(text),
    err: (text) => process.stderr.write(text),
    live: process.stderr.isTTY === true,
  }),
  { disableErrorReporting: true, teardown },
)
