/**
 * The generator's flags for effect/cli, with their help. Every flag is read as text: the
 * values are checked afterwards (Options.resolve) together with their environment defaults,
 * because effect/cli stops at the first value it cannot parse and the generator reports every
 * bad value at once.
 */
import type { Option } from "effect"
import { Flag } from "effect/cli"
import { defaultDebeziumOptions } from "../Debezium.js"
import { ONE_MIB } from "../Records.js"
import type { ValueOption } from "./Values.js"

const text = (name: ValueOption, metavar: string, description: string) =>
  Flag.String(name).pipe(Flag.withMetavar(metavar), Flag.withDescription(description), Flag.optional)

export const flags: { readonly [K in ValueOption]: Flag.Flag<Option.Option<string>> } = {
  rate: text("rate", "N", "records per second, 0 = as fast as possible [TEST_DATA__RATE, 10]"),
  total: text("total", "N", "records to produce, blank = unlimited [TEST_DATA__TOTAL_RECORDS, unlimited]"),
  pattern: text("pattern", "P", "valid | invalid | mixed [TEST_DATA__PATTERN, mixed]"),
  "invalid-ratio": text(
    "invalid-ratio",
    "R",
    "share of invalid records in a mixed stream [TEST_DATA__INVALID_RATIO, 0.1]",
  ),
  "duplicate-ratio": text("duplicate-ratio", "R", "share of re-sent earlier valid records [0.05]"),
  "malformed-ratio": text("malformed-ratio", "R", "share of messages that are not JSON [0]"),
  "oversized-ratio": text("oversized-ratio", "R", "share of oversized messages [0]"),
  "oversized-bytes": text("oversized-bytes", "N", `size of each oversized message [${ONE_MIB + 1}]`),
  output: text("output", "O", "console | kafka | file [console]"),
  "bootstrap-servers": text(
    "bootstrap-servers",
    "S",
    "comma-separated brokers (kafka) [KAFKA__BOOTSTRAP_SERVERS]",
  ),
  topic: text("topic", "T", "target topic (kafka) [KAFKA__TOPIC_SOURCE]"),
  "partitions-key": text(
    "partitions-key",
    "F",
    "field (dotted path) whose value keys messages (kafka) [event_id]",
  ),
  file: text("file", "PATH", "JSON-lines file (file)"),
  seed: text("seed", "N", "seed (0..4294967295); same seed, same records [random]"),
  "batch-size": text("batch-size", "N", "messages per send or write [500]"),
  format: text(
    "format",
    "F",
    "plain (order events) | debezium (change events of a table) [PIPELINE__SOURCE_FORMAT, plain]",
  ),
  rows: text("rows", "N", `debezium: rows of the table, ids 1..N [${defaultDebeziumOptions.rows}]`),
  "delete-ratio": text(
    "delete-ratio",
    "R",
    `debezium: share of change events that delete a row [${defaultDebeziumOptions.deleteRatio}]`,
  ),
  "tombstone-ratio": text(
    "tombstone-ratio",
    "R",
    `debezium: share of deletes followed by their tombstone [${defaultDebeziumOptions.tombstoneRatio}]`,
  ),
  schemas: text(
    "schemas",
    "B",
    "debezium: true = keys and values in the JSON converter's schema/payload envelope (schemas.enable=true) [false]",
  ),
}

export const description = [
  "Test data for the pipeline: order events at a controlled rate, with invalid records of every",
  "kind (each tagged with its defect), duplicates, malformed JSON and oversized messages.",
  "Defaults in [brackets]: an environment variable (also read from .env), then a value; a flag wins.",
  "Ratios are shares of all messages, in [0, 1]. Records go to stdout (console) one JSON per line;",
  "progress and the summary go to stderr. KAFKA__API_KEY / KAFKA__API_SECRET enable SASL_SSL.",
  "With --format debezium: creates, updates and deletes of the rows of a table, as Debezium's",
  'JSON converter writes them without schemas, keyed {"id":N}; --total counts tombstones too.',
  "The plain stream's shape options (--pattern, the ratios of invalid, duplicate, malformed and",
  "oversized messages, --partitions-key) do not apply to it.",
  "Exit codes: 0 done or stopped with Ctrl-C, 1 failure, 2 bad options.",
].join("\n  ")
