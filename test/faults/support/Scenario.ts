/**
 * One fault scenario from start to end: a fresh source topic of 3 partitions, a collection
 * preloaded with 20,000 documents, the service (one instance or several in one group), a
 * producer that keeps sending the input while `fault` does its damage, then the wait until the
 * group has committed every offset, and the comparison with the clean run of the same input.
 */
import { mkdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { assert } from "@effect/vitest"
import {
  createTopic,
  defaultServiceEnv,
  freshNames,
  groupCaughtUp,
  type Names,
  type RunningService,
  startService,
  summaryOf,
  waitFor,
} from "../../integration/support/Service.js"
import type { Input } from "./Input.js"
import {
  assertSameAs,
  assertSameSet,
  collect,
  committedAtLeast,
  committedOffsets,
  committedTotal,
  endOffsets,
  type Outcome,
  preload,
  summary,
} from "./Outcome.js"
import { type ContinuousProducer, type Insert, startProducer } from "./Producer.js"

/** Records a second the producer sends by default: well below what the service takes, so a backlog shrinks. */
export const defaultRate = 1_000

/** Every database a scenario made, dropped when the file ends. */
export const databases: string[] = []

export interface Run {
  readonly names: Names
  readonly producer: ContinuousProducer
  /** Every instance started so far, in order. */
  readonly instances: ReadonlyArray<RunningService>
  /** Starts one more instance in the group. */
  readonly spawn: () => RunningService
  /** All instances' output, for failure messages. */
  readonly output: () => string
  /** Stops an instance on purpose (every other one must still run at the end). */
  readonly stop: (service: RunningService, signal: NodeJS.Signals) => Promise<number | null>
  /** Waits until the group's committed offsets have grown by `n` messages from now. */
  readonly progress: (n: number, what: string) => Promise<void>
  /** Says that the damage starts now (for the report's fault duration). */
  readonly faultBegins: () => void
}

export interface Report {
  readonly scenario: string
  readonly recordsProduced: number
  readonly sourceMessages: number
  readonly documents: number
  readonly distinctSinkKeys: number
  readonly sinkDuplicates: number
  readonly sinkReplays: number
  readonly deadLetters: number
  readonly deadLetterDuplicates: number
  /** Messages on the source topic not yet committed when the fault ended. */
  readonly backlogAtFaultEnd: number
  /** From the fault's end to the group's first commit after it (records flow again). */
  readonly resumedSeconds: number
  readonly catchUpSeconds: number
  readonly faultSeconds: number
  readonly totalSeconds: number
  readonly producerRetries: number
}

/**
 * Each instance's output, kept as <scenario>-<n>.log in FAULTS_LOG_DIR when it is set, and in
 * coverage/fault-logs when the scenario failed.
 */
const saveLogs = (scenario: string, instances: ReadonlyArray<RunningService>, failed: boolean) => {
  const given = process.env.FAULTS_LOG_DIR
  const dir = given !== undefined && given !== "" ? given : failed ? "coverage/fault-logs" : undefined
  if (dir === undefined) return
  mkdirSync(dir, { recursive: true })
  for (const [i, s] of instances.entries()) writeFileSync(join(dir, `${scenario}-${i}.log`), s.output())
  if (failed)
    console.log(`fault scenario ${scenario} failed; the instances' output is in ${dir}/${scenario}-*.log`)
}

/** The last lines of a text: what a failure message can carry of an instance's output. */
const tail = (text: string, lines = 40) => text.split("\n").slice(-lines).join("\n")

const seconds = (ms: number) => Math.round(ms / 100) / 10

export const waitForRunning = (service: RunningService) =>
  waitFor(
    "the instance to run",
    async () => service.output().includes("pipeline running"),
    60_000,
    service.output,
  )

/** The clean run: the whole input on the topic first, one instance, no fault. */
export const cleanRun = async (input: Input): Promise<Outcome & { readonly report: Report }> => {
  const began = Date.now()
  const names = freshNames("fault-clean")
  databases.push(names.database)
  await createTopic(names.source, 3)
  await preload(names.database, input.preload)
  const producer = startProducer(names.source, input.records, { ratePerSecond: 1e9, chunk: 500 })
  await producer.done
  const service = startService(defaultServiceEnv(names))
  try {
    await waitFor(
      "the clean run to commit every offset",
      () => groupCaughtUp(names.group, names.source),
      180_000,
      service.output,
    )
    assert.strictEqual(await service.stop("SIGTERM"), 0, service.output())
  } catch (error) {
    saveLogs("clean", [service], true)
    throw error
  } finally {
    await service.stop("SIGKILL")
    saveLogs("clean", [service], false)
  }
  const outcome = await collect(names)
  // The clean run against what the generator says each record is.
  assertSameSet(new Set(outcome.documents.keys()), input.expected.documentIds, "clean run: MongoDB _ids")
  assertSameSet(outcome.sinkKeys, input.expected.sinkKeys, "clean run: distinct sink keys")
  assertSameSet(outcome.deadIndexes, input.expected.deadIndexes, "clean run: dead letters")
  // One instance, no replay: nothing twice.
  assert.strictEqual(outcome.sinkMessages, outcome.sinkKeys.size, "clean run: sink messages")
  assert.strictEqual(outcome.deadLetters, outcome.deadIndexes.size, "clean run: dead letters")
  assert.strictEqual(outcome.sourceMessages, input.records.length)
  const totals = summaryOf(service.output())!
  assert.strictEqual(totals.consumed, input.records.length, service.output())
  assert.strictEqual(totals.valid! + totals.deadLettered! + totals.duplicates!, input.records.length)
  return {
    ...outcome,
    report: {
      scenario: "clean",
      recordsProduced: input.records.length,
      sourceMessages: outcome.sourceMessages,
      ...summary(outcome),
      backlogAtFaultEnd: 0,
      resumedSeconds: 0,
      catchUpSeconds: 0,
      faultSeconds: 0,
      totalSeconds: seconds(Date.now() - began),
      producerRetries: 0,
    },
  }
}

export interface ScenarioOptions {
  readonly input: Input
  readonly clean: Outcome
  /** Records a second the producer sends (default `defaultRate`). */
  readonly ratePerSecond?: number
  /** Instances started before the producer (default 1). */
  readonly instances?: number
  /** Settings other than the defaults, each with its reason where it is given. */
  readonly env?: Record<string, string>
  /** Messages sent between the records, and the `x-index`es of the dead letters they must become. */
  readonly insert?: Insert & { readonly deadIndexes: ReadonlySet<string> }
  /** Does the damage; returns when the fault is over (a server is back, the last instance started). */
  readonly fault: (run: Run) => Promise<void>
}

export const runScenario = async (scenario: string, o: ScenarioOptions): Promise<Report> => {
  const began = Date.now()
  const names = freshNames(`fault-${scenario}`)
  databases.push(names.database)
  await createTopic(names.source, 3)
  await preload(names.database, o.input.preload)
  const env = defaultServiceEnv(names, o.env ?? {})
  const instances: RunningService[] = []
  const spawn = () => {
    const s = startService(env)
    instances.push(s)
    return s
  }
  const output = () => instances.map((s, i) => `--- instance ${i}\n${s.output()}`).join("\n")
  // The end of each instance's output: a whole one would be cut by the test report anyway.
  const recent = () =>
    instances.map((s, i) => `--- instance ${i} (last lines)\n${tail(s.output())}`).join("\n")
  for (let i = 0; i < (o.instances ?? 1); i++) spawn()
  for (const s of instances) await waitForRunning(s)
  const producer = startProducer(names.source, o.input.records, {
    ratePerSecond: o.ratePerSecond ?? defaultRate,
    ...(o.insert === undefined ? {} : { insert: o.insert }),
  })
  const progress = async (n: number, what: string) => {
    const from = await committedTotal(names.group, names.source).catch(() => 0)
    await waitFor(
      what,
      async () => (await committedTotal(names.group, names.source)) >= from + n,
      180_000,
      recent,
    )
  }
  const stopped = new Set<RunningService>()
  const stop = (service: RunningService, signal: NodeJS.Signals) => {
    stopped.add(service)
    return service.stop(signal)
  }
  let faultBegan: number | undefined
  const faultBegins = () => {
    faultBegan = Date.now()
  }
  const run: Run = { names, producer, instances, spawn, output, stop, progress, faultBegins }
  let failed = true
  try {
    await o.fault(run)
    const faultEnded = Date.now()
    let targets: ReadonlyMap<number, number> = new Map()
    let backlog = 0
    let committedAtFaultEnd = 0
    await waitFor("the offsets after the fault", async () => {
      targets = await endOffsets(names.source)
      const committed = await committedOffsets(names.group, names.source)
      backlog = [...targets].reduce((n, [p, end]) => n + end - Math.max(0, committed.get(p) ?? 0), 0)
      committedAtFaultEnd = [...committed.values()].reduce((n, o) => n + Math.max(0, o), 0)
      return true
    })
    await waitFor(
      "the group's first commit after the fault",
      async () =>
        (await committedTotal(names.group, names.source)) > committedAtFaultEnd ||
        // Nothing left to commit: the producer is done and the group has every offset.
        (producer.sent() === o.input.records.length && (await groupCaughtUp(names.group, names.source))),
      240_000,
      recent,
    )
    const resumed = Date.now()
    await waitFor(
      "the group to catch up with what was produced until the fault ended",
      () => committedAtLeast(names.group, names.source, targets),
      240_000,
      recent,
    )
    const caughtUp = Date.now()
    await producer.done
    await waitFor(
      "the group to commit every offset",
      () => groupCaughtUp(names.group, names.source),
      240_000,
      recent,
    )

    // Every instance the scenario did not stop on purpose is still running, and stops cleanly.
    const survivors = instances.filter((s) => !stopped.has(s))
    for (const s of survivors) {
      assert.isTrue(
        s.child.exitCode === null && s.child.signalCode === null,
        `an instance exited:\n${s.output()}`,
      )
    }
    for (const s of survivors) assert.strictEqual(await s.stop("SIGTERM"), 0, s.output())

    const outcome = await collect(names)
    assertSameAs(outcome, o.clean, o.insert?.deadIndexes)
    const inserted = o.insert?.messages.length ?? 0
    assert.strictEqual(producer.sent(), o.input.records.length)
    assert.strictEqual(producer.inserted(), inserted)
    assert.isAtLeast(outcome.sourceMessages, o.input.records.length + inserted)
    failed = false
    return {
      scenario,
      recordsProduced: o.input.records.length + inserted,
      sourceMessages: outcome.sourceMessages,
      ...summary(outcome),
      backlogAtFaultEnd: backlog,
      resumedSeconds: seconds(resumed - faultEnded),
      catchUpSeconds: seconds(caughtUp - faultEnded),
      faultSeconds: seconds(faultEnded - (faultBegan ?? faultEnded)),
      totalSeconds: seconds(Date.now() - began),
      producerRetries: producer.failedSends(),
    }
  } finally {
    await producer.stop()
    for (const s of instances) await s.stop("SIGKILL")
    saveLogs(scenario, instances, failed)
  }
}

export const printReport = (report: Report) => {
  console.log(`fault-report ${JSON.stringify(report)}`)
}
