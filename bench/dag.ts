/**
 * Overhead of the DAG engine per batch: a DAG shaped like the pipeline (a chain of five tasks,
 * then two sinks in parallel) with trivial bodies, against the same six bodies run as one
 * plain sequential Effect.gen. Run with `npx tsx bench/dag.ts [runs]`.
 */
import { Effect } from "effect"
import { Dag, Executor, PipelineContext, Task } from "../src/Dag.js"

type Records = ReadonlyArray<number>

const body = (input: Records): Effect.Effect<Records> => Effect.succeed(input)
const source: Records = [1, 2, 3]

const task = Task.builder<Records, Records>()
const chain = ["mapping", "conversion", "standardization", "duplicates", "quality"]
const tasks = [
  ...chain.map((name, i) => {
    const upstream = chain[i - 1]
    return upstream === undefined
      ? task({ name, dependsOn: [], run: ({ context }) => body(context.payload) })
      : task({ name, dependsOn: [upstream], run: ({ outputs }) => body(outputs.get(upstream)) })
  }),
  task({ name: "mongo", dependsOn: ["quality"], run: ({ outputs }) => body(outputs.get("quality")) }),
  task({ name: "kafka", dependsOn: ["quality"], run: ({ outputs }) => body(outputs.get("quality")) }),
]

const baseline = Effect.gen(function* () {
  let records = source
  for (let i = 0; i < chain.length; i++) records = yield* body(records)
  yield* body(records)
  return yield* body(records)
})

const time = (label: string, runs: number, effect: Effect.Effect<unknown>) =>
  Effect.gen(function* () {
    const start = performance.now()
    for (let i = 0; i < runs; i++) yield* effect
    const micros = ((performance.now() - start) * 1000) / runs
    return { label, micros }
  })

const main = Effect.gen(function* () {
  const runs = Number(process.argv[2] ?? 20_000)
  const dag = yield* Dag.make(tasks)
  const context = yield* PipelineContext.make({
    correlationId: "bench",
    source: { topic: "bench", partition: 0, firstOffset: "0", lastOffset: "2" },
    payload: source,
  })
  const engine = Effect.flatMap(Executor.run(dag, context, { maxWorkers: 10 }), (result) =>
    result.allSucceeded ? Effect.void : Effect.die("a bench run failed"),
  )

  // Warm up both, so the JIT has compiled what is measured.
  yield* time("warm-up", Math.ceil(runs / 4), engine)
  yield* time("warm-up", Math.ceil(runs / 4), baseline)

  const measuredBaseline = yield* time("baseline (sequential Effect.gen)", runs, baseline)
  const measuredEngine = yield* time("engine (Executor.run)", runs, engine)
  for (const { label, micros } of [measuredBaseline, measuredEngine]) {
    console.log(`${label.padEnd(34)} ${micros.toFixed(2).padStart(8)} µs/run`)
  }
  console.log(
    `${"ratio engine / baseline".padEnd(34)} ${(measuredEngine.micros / measuredBaseline.micros).toFixed(1).padStart(8)} x`,
  )
  console.log(`runs: ${runs}, tasks per DAG: ${tasks.length}, target: < 50 µs/run`)
})

Effect.runPromise(main)
