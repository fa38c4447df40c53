/**
 * Throughput of the task library: the shipped pipeline's five transforms (config/pipeline.yaml)
 * over contract records from the test-data generator (10% invalid, 5% duplicates), in batches
 * as the runtime hands them over, in-process on one core. Reported per task, for the whole
 * chain, and for the chain driven by the DAG engine (five transform tasks and two sinks that
 * only check the limits, through Executor.run, once per batch). The baseline in the same run is a JSON.parse +
 * JSON.stringify copy of the same records. The limits every record is checked against before
 * the sinks (key, nesting depth, field names, MongoDB and sink-topic sizes: Pipeline/Admission.ts)
 * are measured after the chain, as the runtime runs them; the sink-topic check encodes each
 * message, which the Kafka sink then sends without encoding it again.
 * Run with `npx tsx bench/tasks.ts [records] [batch-size] [rounds]`; figures are medians.
 */
import { readFileSync } from "node:fs"
import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"
import { Effect, Result } from "effect"
import { decodeSettings } from "../src/Config/AppConfig.js"
import { parsePipelineText } from "../src/Config/PipelineFile.js"
import { type PipelineSpec, validatePipelineSpec } from "../src/Config/PipelineSpec.js"
import { isSinkTask } from "../src/Config/SinkKinds.js"
import * as Executor from "../src/Dag/Executor.js"
import * as PipelineContext from "../src/Dag/PipelineContext.js"
import { type JsonObject, makeRecord, type PipelineRecord } from "../src/Domain/Record.js"
import { defaultRecordOptions, generate } from "../src/Generator/Records.js"
import type { ProducerShape } from "../src/Kafka/Producer.js"
import type { MongoDbShape } from "../src/Mongo/MongoDb.js"
import { makeAdmission } from "../src/Pipeline/Admission.js"
import { buildPlan, type SinkFactories } from "../src/Pipeline/PipelineDag.js"
import { kafkaSink, mongoSink } from "../src/Pipeline/Sinks.js"
import { makeTransform } from "../src/Tasks/Library.js"
import type { Transform } from "../src/Tasks/Transform.js"

const total = Number(process.argv[2] ?? 200_000)
const batchSize = Number(process.argv[3] ?? 100)
const rounds = Number(process.argv[4] ?? 5)

const load = (file: string): PipelineSpec =>
  Result.getOrThrow(
    validatePipelineSpec(
      Result.getOrThrow(
        parsePipelineText(readFileSync(new URL(`../${file}`, import.meta.url), "utf8"), "yaml"),
      ),
    ),
  )
const spec = load("config/pipeline.yaml")
const branchedFile = "config/examples/branched.yaml"
const branched = load(branchedFile)
const transformTasks = spec.tasks.filter((task) => !isSinkTask(task))
// A fresh chain per measurement: the duplicate check's window would otherwise see a replay.
const freshChain = (): Array<{ readonly name: string; readonly transform: Transform }> =>
  transformTasks.map((task) => ({ name: task.name, transform: makeTransform(task) }))

const values: Array<JsonObject> = []
for (const record of generate({ ...defaultRecordOptions, seed: 42 }, 0, total)) {
  if (!(record.value instanceof Uint8Array)) values.push(record.value)
}
const batches: Array<Array<PipelineRecord>> = []
for (let start = 0; start < values.length; start += batchSize) {
  // As the parser makes them: with the size of the message each was read from.
  batches.push(
    values
      .slice(start, start + batchSize)
      .map((value, i) => makeRecord(String(start + i), value, Buffer.byteLength(JSON.stringify(value)))),
  )
}

// A full collection before each timed section, so that one contender does not pay for the
// garbage another left behind.
setFlagsFromString("--expose-gc")
const collectGarbage = runInNewContext("gc") as () => void

const median = (samples: ReadonlyArray<number>): number =>
  [...samples].sort((a, b) => a - b)[Math.floor(samples.length / 2)]!
const perSecond = (ms: number): number => (values.length * 1000) / ms

const baseline = (): number => {
  const start = performance.now()
  let sink = 0
  for (const batch of batches) {
    for (const record of batch)
      sink += (JSON.parse(JSON.stringify(record.value)) as JsonObject) === null ? 1 : 0
  }
  if (sink < 0) console.log(sink)
  return performance.now() - start
}

// The shipped sinks' limit checks; nothing is written (the write side is never called).
const unused = undefined as never
const producer: ProducerShape = { send: unused, maxMessageBytes: () => 1_048_588 }
const liveChecks = {
  mongodb: mongoSink("mongodb", unused as MongoDbShape, {
    writeConcern: "majority",
    journal: true,
    ordered: false,
  }),
  kafka: kafkaSink("kafka", producer, "bench.clean", { compression: "none" }),
}
const origin = { correlationId: "bench-0-0-99", topic: "bench", partition: 0 }
const limits = { maxNestingDepth: 100, maxKeyBytes: 1024 }

/** Milliseconds per task, for the limit checks and in total, with the outcome counts as a check. */
const chain = (): {
  readonly perTask: Array<number>
  readonly limits: number
  readonly total: number
  readonly outcomes: string
} => {
  const tasks = freshChain()
  const last = tasks[tasks.length - 1]!.name
  const admit = makeAdmission(
    [liveChecks.mongodb, liveChecks.kafka],
    spec.key,
    limits,
    [last],
    (_sink, _batch, outputs) => outputs(last),
  )
  const perTask = tasks.map(() => 0)
  let limitsMs = 0
  const counts = { valid: 0, invalid: 0, duplicate: 0, filtered: 0, refused: 0 }
  const start = performance.now()
  for (const batch of batches) {
    let records: ReadonlyArray<PipelineRecord> = batch
    for (let t = 0; t < tasks.length; t++) {
      const taskStart = performance.now()
      records = tasks[t]!.transform(records).records
      perTask[t]! += performance.now() - taskStart
    }
    const limitsStart = performance.now()
    const out = records
    counts.refused += admit({ origin, records: batch }, () => out).refused.length
    limitsMs += performance.now() - limitsStart
    for (const record of records) counts[record.status]++
  }
  return { perTask, limits: limitsMs, total: performance.now() - start, outcomes: JSON.stringify(counts) }
}

/** Sinks that check the limits as the live ones do and write nothing. */
const checkingSinks: SinkFactories = {
  mongodb_sink: (name) => ({
    ...liveChecks.mongodb,
    name,
    write: (records) => Effect.succeed({ written: records.length, rejected: [] }),
  }),
  kafka_sink: (name) => ({
    ...liveChecks.kafka,
    name,
    write: (records) => Effect.succeed({ written: records.length, rejected: [] }),
  }),
}

/** A pipeline as the runtime runs it: its plan (transforms, merges, admission, sinks) through Executor.run, once per batch. */
const engine = Effect.fnUntraced(function* (pipeline: PipelineSpec) {
  // The service's defaults (retries, limits, workers); the addresses are never used.
  const settings = yield* decodeSettings({
    KAFKA__BOOTSTRAP_SERVERS: "127.0.0.1:9092",
    KAFKA__TOPIC_SOURCE: "bench",
    KAFKA__TOPIC_SINK: "bench.clean",
    KAFKA__CONSUMER_GROUP: "bench",
    MONGODB__CONNECTION_STRING: "mongodb://127.0.0.1:27017/",
    MONGODB__DATABASE: "bench",
    MONGODB__COLLECTION: "bench",
  })
  const plan = yield* buildPlan(pipeline, checkingSinks, settings.pipeline)
  const start = performance.now()
  for (const [i, records] of batches.entries()) {
    const context = yield* PipelineContext.make({
      correlationId: `bench-${i}`,
      source: {
        topic: "bench",
        partition: 0,
        firstOffset: records[0]!.offset,
        lastOffset: records.at(-1)!.offset,
      },
      payload: { origin, records },
    })
    const result = yield* Executor.run(plan.dag, context, {
      maxWorkers: settings.pipeline.maxWorkers,
      retry: plan.retry,
    })
    if (!result.allSucceeded) return yield* Effect.die("a bench run failed")
  }
  return performance.now() - start
})

const main = Effect.gen(function* () {
  // Warm up, so that the JIT has compiled what is measured.
  baseline()
  chain()
  yield* engine(spec)
  yield* engine(branched)
  const baselineMs: Array<number> = []
  const chainMs: Array<number> = []
  const engineMs: Array<number> = []
  const branchedMs: Array<number> = []
  const perTaskMs: Array<Array<number>> = transformTasks.map(() => [])
  const limitsMs: Array<number> = []
  let outcomes = ""
  for (let round = 0; round < rounds; round++) {
    collectGarbage()
    baselineMs.push(baseline())
    collectGarbage()
    const run = chain()
    chainMs.push(run.total)
    for (const [t, ms] of run.perTask.entries()) perTaskMs[t]!.push(ms)
    limitsMs.push(run.limits)
    outcomes = run.outcomes
    collectGarbage()
    engineMs.push(yield* engine(spec))
    collectGarbage()
    branchedMs.push(yield* engine(branched))
  }

  const base = perSecond(median(baselineMs))
  const whole = perSecond(median(chainMs))
  const withEngine = perSecond(median(engineMs))
  const withBranches = perSecond(median(branchedMs))
  const line = (label: string, rate: number, extra = "") =>
    console.log(
      `${label.padEnd(38)} ${Math.round(rate).toLocaleString("en-US").padStart(12)} records/s${extra}`,
    )
  console.log(
    `${values.length} contract records in batches of ${batchSize}, ${rounds} rounds, medians; node ${process.version}`,
  )
  console.log(`outcomes per run: ${outcomes}`)
  line("baseline: JSON parse+stringify copy", base)
  for (const [t, { name }] of transformTasks.entries()) {
    const ms = median(perTaskMs[t]!)
    line(`  task ${name}`, perSecond(ms), `  (${((ms * 1e6) / values.length).toFixed(0)} ns/record)`)
  }
  const limitsMedian = median(limitsMs)
  line(
    "  limit checks before the sinks",
    perSecond(limitsMedian),
    `  (${((limitsMedian * 1e6) / values.length).toFixed(0)} ns/record)`,
  )
  line("five-task chain + limit checks", whole, `  (${(whole / base).toFixed(2)} x baseline)`)
  line("shipped pipeline through its plan", withEngine, `  (${(withEngine / base).toFixed(2)} x baseline)`)
  line(
    `branched example (${branchedFile})`,
    withBranches,
    `  (${(withBranches / base).toFixed(2)} x baseline, ${(withBranches / withEngine).toFixed(2)} x the chain)`,
  )
  console.log(
    `target >= 150,000 records/s (the shipped pipeline through its plan): ${withEngine >= 150_000 ? "met" : "NOT met"}`,
  )
})

Effect.runPromise(main)
