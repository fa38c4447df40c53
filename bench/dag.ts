/**
 * Overhead of the DAG engine per batch: a DAG shaped like the pipeline (a chain of five tasks,
 * then the two sinks in parallel) with trivial bodies, against the same bodies run as one plain
 * sequential Effect.gen, and against that baseline plus the span and log annotations the engine
 * puts around every task (to tell the cost of scheduling from the cost of tracing).
 * Run with `npx tsx bench/dag.ts [runs-per-round] [rounds]`; figures are medians of the rounds.
 */
import { Effect } from "effect"
import * as Dag from "../src/Dag/Dag.js"
import * as Executor from "../src/Dag/Executor.js"
import * as PipelineContext from "../src/Dag/PipelineContext.js"
import * as Task from "../src/Dag/Task.js"

type Records = ReadonlyArray<number>

const body = (input: Records): Effect.Effect<Records> => Effect.succeed(input)
const source: Records = [1, 2, 3]

const chain = ["mapping", "conversion", "standardization", "duplicates", "quality"]
const sinks = ["mongo", "kafka"]
const task = Task.builder<Records, Records>()
const tasks = [
  ...chain.map((name, i) => {
    const upstream = chain[i - 1]
    return upstream === undefined
      ? task({ name, dependsOn: [], run: ({ context }) => body(context.payload) })
      : task({ name, dependsOn: [upstream], run: ({ outputs }) => body(outputs.get(upstream)) })
  }),
  ...sinks.map((name) =>
    task({ name, dependsOn: ["quality"], run: ({ outputs }) => body(outputs.get("quality")) }),
  ),
]

const baseline = Effect.gen(function* () {
  let records = source
  for (let i = 0; i < chain.length; i++) records = yield* body(records)
  yield* body(records)
  return yield* body(records)
})

const traced = (name: string, effect: Effect.Effect<Records>) =>
  effect.pipe(
    Effect.withSpan(
      name,
      { attributes: { "pipeline.correlation_id": "bench" } },
      { captureStackTrace: false },
    ),
    Effect.annotateLogs({ correlationId: "bench", task: name }),
  )

const baselineTraced = Effect.gen(function* () {
  let records = source
  for (const name of chain) records = yield* traced(name, body(records))
  yield* traced("mongo", body(records))
  return yield* traced("kafka", body(records))
})

const microsPerRun = (runs: number, effect: Effect.Effect<unknown>) =>
  Effect.gen(function* () {
    const start = performance.now()
    for (let i = 0; i < runs; i++) yield* effect
    return ((performance.now() - start) * 1000) / runs
  })

const median = (values: ReadonlyArray<number>) =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!

const main = Effect.gen(function* () {
  const runs = Number(process.argv[2] ?? 20_000)
  const rounds = Number(process.argv[3] ?? 7)
  const dag = yield* Dag.make(tasks)
  const context = yield* PipelineContext.make({
    correlationId: "bench",
    source: { topic: "bench", partition: 0, firstOffset: "0", lastOffset: "2" },
    payload: source,
  })
  const engine = Effect.flatMap(Executor.run(dag, context, { maxWorkers: 10 }), (result) =>
    result.allSucceeded ? Effect.void : Effect.die("a bench run failed"),
  )
  const contenders = [
    { label: "baseline: sequential Effect.gen", effect: baseline },
    { label: "baseline + span and log annotations", effect: baselineTraced },
    { label: "engine: Executor.run", effect: engine },
  ]

  // Warm up, so that the JIT has compiled what is measured.
  for (const { effect } of contenders) yield* microsPerRun(runs, effect)
  const samples = contenders.map((): Array<number> => [])
  for (let round = 0; round < rounds; round++) {
    for (const [i, { effect }] of contenders.entries()) samples[i]!.push(yield* microsPerRun(runs, effect))
  }

  const figures = samples.map(median)
  const [plain, withHooks, measured] = figures as [number, number, number]
  console.log(
    `DAG: ${tasks.length} tasks (chain of ${chain.length}, then ${sinks.length} sinks), ${runs} runs x ${rounds} rounds, medians`,
  )
  for (const [i, { label }] of contenders.entries()) {
    console.log(`${label.padEnd(38)} ${figures[i]!.toFixed(2).padStart(8)} µs/run`)
  }
  console.log(`${"ratio engine / baseline".padEnd(38)} ${(measured / plain).toFixed(1).padStart(8)} x`)
  console.log(
    `${"ratio engine / baseline + hooks".padEnd(38)} ${(measured / withHooks).toFixed(1).padStart(8)} x`,
  )
  console.log(`target: < 50 µs/run: ${measured < 50 ? "met" : "NOT met"}`)
})

Effect.runPromise(main)
