/**
 * The fault suite: the service at its defaults (batch size 500, 3 partitions at once, the
 * shipped retries and config/pipeline.yaml) over a populated collection, with a producer
 * sending all along, while something breaks: the service is SIGKILLed, the group rebalances
 * again and again, the broker or MongoDB is SIGKILLed and comes back, or a burst of malformed
 * messages arrives. Each scenario then waits until the group has committed every offset and
 * compares what it left with a clean run of the same input: the same MongoDB documents (ids
 * and contents), the same distinct keys on the sink topic, every dead letter.
 *
 * It kills the stack's broker and MongoDB (scripts/stack.ts `kill`/`start`), so it runs alone:
 * its own vitest project, after unit and integration (vitest.config.ts). Within it, the scenarios
 * that leave the servers alone run side by side (vitest's concurrent tests), the outages alone.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { kill, type Service, start } from "../../scripts/stack.js"
import { defaultRecordOptions, generate } from "../../src/Generator/Records.js"
import { dropDatabase, waitFor } from "../integration/support/Service.js"
import { type Input, makeInput } from "./support/Input.js"
import { type Outcome, summary } from "./support/Outcome.js"
import { messageOf } from "./support/Producer.js"
import {
  cleanRun,
  databases,
  printReport,
  type Report,
  runScenario,
  type ScenarioOptions,
  waitForRunning,
} from "./support/Scenario.js"

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Records per run: 20 s of the producer at 1,000 a second, 50 s at 400 (README "Fault suite"). */
const records = Number(process.env.FAULTS_RECORDS ?? 20_000)

const input: Input = makeInput(20260, records)
let clean: Outcome

beforeAll(async () => {
  const result = await cleanRun(input)
  clean = result
  printReport(result.report)
})

afterAll(async () => {
  for (const db of databases) await dropDatabase(db).catch(() => undefined)
})

/**
 * For the scenarios that SIGKILL an instance: a killed member leaves its group without a word,
 * so its partitions wait out its session (KAFKA__SESSION_TIMEOUT_SECONDS, 30 s by default, kept)
 * before they move. 400 records a second stretch the 20,000 records over 50 s, so that the
 * producer is still sending when the last instance is killed or stopped.
 */
const rateAcrossSessionTimeouts = 400

/** SIGKILLs a server of the stack, keeps it down for `downMs`, and starts it again on the same data. */
const outage = async (service: Service, downMs: number) => {
  const killed = await kill(service)
  try {
    assert.isTrue(
      killed,
      `the fault suite kills the stack's ${service}, but found none started under STACK_DIR: run it against a stack that \`npm run stack -- up\` started`,
    )
    await sleep(downMs)
  } finally {
    await start(service)
  }
}

/** The service SIGKILLed twice mid-stream and started again each time. */
const sigkillTwice = (env: Record<string, string> = {}): ScenarioOptions => ({
  input,
  clean,
  env,
  ratePerSecond: rateAcrossSessionTimeouts,
  fault: async (run) => {
    await run.progress(2_000, "the first instance to commit 2,000 records")
    run.faultBegins()
    await run.stop(run.instances[0]!, "SIGKILL")
    run.spawn()
    await run.progress(2_000, "the restarted instance to commit 2,000 records")
    await run.stop(run.instances[1]!, "SIGKILL")
    run.spawn()
  },
})

/** Three instances: one SIGKILLed, one added, one stopped with SIGTERM. */
const rebalanceStorm = (env: Record<string, string> = {}): ScenarioOptions => ({
  input,
  clean,
  env,
  ratePerSecond: rateAcrossSessionTimeouts,
  instances: 3,
  fault: async (run) => {
    await run.progress(2_000, "the three instances to commit 2,000 records")
    run.faultBegins()
    await run.stop(run.instances[0]!, "SIGKILL")
    await sleep(2_000)
    const added = run.spawn()
    await waitForRunning(added)
    const leaving = run.instances[1]!
    assert.strictEqual(await run.stop(leaving, "SIGTERM"), 0, leaving.output())
  },
})

// Exactly once per source message, and a duplicate removed as in the clean run: the duplicate
// check's window is read back by whoever takes a partition, so a key is on the sink topic as
// many times as the clean run put it there.
const once = (report: Report) => {
  assert.strictEqual(
    report.sinkReplays,
    0,
    "every source message's sink message once, as read_committed sees the topic",
  )
  assert.strictEqual(report.deadLetterDuplicates, 0, "every dead letter once")
  assert.strictEqual(
    report.sinkDuplicates,
    summary(clean).sinkDuplicates,
    "keys on the sink topic more than once: as many as in the clean run",
  )
}

// The delivery setting is what the exactly_once scenarios are about; every other setting is the default.
const exactlyOnce = { KAFKA__DELIVERY: "exactly_once" }

/** A burst of 10,000 malformed JSON messages in partition 0, a third of the way into the records. */
const malformedBurst = async () => {
  // Malformed JSON only: the generator with every message malformed, another seed.
  const burst = [
    ...generate(
      { ...defaultRecordOptions, seed: 20261, duplicateRatio: 0, invalidRatio: 0, malformedRatio: 1 },
      0,
      10_000,
    ),
  ]
  assert.isTrue(burst.every((r) => r.kind === "malformed"))
  const messages = burst.map((r) => ({
    ...messageOf(r),
    partition: 0,
    headers: { "x-index": `burst-${r.index}`, "x-defect": "malformed_json" },
  }))
  return runScenario("malformed-burst", {
    input,
    clean,
    insert: {
      after: Math.floor(records / 3),
      messages,
      deadIndexes: new Set(messages.map((m) => m.headers["x-index"])),
    },
    fault: async (run) => {
      await waitFor("the burst to begin", async () => run.producer.sent() >= Math.floor(records / 3), 120_000)
      run.faultBegins()
      await waitFor("the burst to be sent", async () => run.producer.inserted() === messages.length, 120_000)
    },
  })
}

describe("faults, at the service's defaults", () => {
  // The scenarios that leave the stack's servers alone run side by side, each on its own topics
  // and database (most of their time is spent waiting out session timeouts and the producer's
  // pace); the outages of the broker and of MongoDB run alone after them.
  describe("the service SIGKILLed twice mid-stream, side by side in each delivery mode", () => {
    it.concurrent("at_least_once: restarted each time", async () => {
      printReport(await runScenario("sigkill", sigkillTwice()))
    })

    it.concurrent("exactly_once: read_committed sees every sink message and dead letter exactly once", async () => {
      const report = await runScenario("eos-sigkill", sigkillTwice(exactlyOnce))
      printReport(report)
      once(report)
    })
  })

  describe("rebalance storms and a malformed burst, side by side", () => {
    it.concurrent("rebalance storm: three instances, one SIGKILLed, one added, one stopped with SIGTERM", async () => {
      printReport(await runScenario("rebalance", rebalanceStorm()))
    })

    it.concurrent("rebalance storm with exactly_once: read_committed sees every sink message and dead letter exactly once", async () => {
      const report = await runScenario("eos-rebalance", rebalanceStorm(exactlyOnce))
      printReport(report)
      once(report)
    })

    it.concurrent("a burst of 10,000 malformed messages in one partition between ordinary records", async () => {
      printReport(await malformedBurst())
    })
  })

  it("the broker SIGKILLed for 15 s and restarted: the service keeps running and catches up", async () => {
    const report = await runScenario("broker", {
      input,
      clean,
      fault: async (run) => {
        await run.progress(2_000, "the first 2,000 records committed")
        run.faultBegins()
        await outage("kafka", 15_000)
      },
    })
    printReport(report)
  })

  it("MongoDB SIGKILLed for 10 s and restarted: the service keeps running and catches up", async () => {
    const report = await runScenario("mongodb", {
      input,
      clean,
      fault: async (run) => {
        await run.progress(2_000, "the first 2,000 records committed")
        run.faultBegins()
        await outage("mongodb", 10_000)
      },
    })
    printReport(report)
    // The outage held the service back: no batch with a valid record can commit without MongoDB,
    // so what the producer sent meanwhile (about 10,000 records) waited for it.
    assert.isAtLeast(report.backlogAtFaultEnd, 2_000)
  })
})
