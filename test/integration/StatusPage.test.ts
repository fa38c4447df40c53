/**
 * The live status page of a running service (METRICS__PORT, `/` and `/status.json`):
 * - /status.json after a known input: the counts are exactly what was pushed, every partition
 *   is assigned and committed to its end, and no record content or secret is in it;
 * - the page in a real headless Chromium: the graph shows the shipped pipeline's tasks and
 *   their dependencies, the counters rise while the generator runs, and when MongoDB is
 *   stopped the page shows the stall (and keeps updating) until MongoDB is back.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import type { Page } from "playwright-core"
import { loadPipelineFile } from "../../src/Config/PipelineFile.js"
import { defaultRecordOptions, type GeneratedRecord, generate } from "../../src/Generator/Records.js"
import type { StatusSnapshot } from "../../src/Observability/Status/Status.js"
import { launchChromium } from "./support/Browser.js"
import { freePort, startFerret, stopProcess } from "./support/Ferret.js"
import {
  createTopic,
  freshNames,
  groupCaughtUp,
  kafka,
  produce,
  root,
  serviceEnv,
  startService,
  topicSize,
  waitFor,
} from "./support/Service.js"
import { kafkaBrokers, mongoUri } from "./support/Stack.js"

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

const statusOf = async (port: number): Promise<StatusSnapshot> => {
  const response = await fetch(`http://127.0.0.1:${port}/status.json`)
  assert.strictEqual(response.status, 200)
  return (await response.json()) as StatusSnapshot
}

const shippedTasks = async () => (await Effect.runPromise(loadPipelineFile("config/pipeline.yaml"))).tasks

describe("status page", () => {
  it("/status.json counts exactly what was pushed, per task and per partition, and shows no record or secret", async () => {
    const port = await freePort()
    const names = freshNames("status-json")
    await createTopic(names.source, 3)
    const records: ReadonlyArray<GeneratedRecord> = [
      ...generate({ ...defaultRecordOptions, seed: 61, malformedRatio: 0.03 }, 0, 900),
    ]
    const ofKind = (kind: GeneratedRecord["kind"]) => records.filter((r) => r.kind === kind).length
    const service = startService(serviceEnv(names, { METRICS__PORT: String(port) }))
    try {
      await produce(names.source, records)
      await waitFor(
        "the group to catch up",
        () => groupCaughtUp(names.group, names.source),
        90_000,
        service.output,
      )
      // The lag comes from the broker every 15 s; wait for the first answer after the catch-up.
      let status = await statusOf(port)
      await waitFor(
        "the broker's lag of 0 on every partition",
        async () => {
          status = await statusOf(port)
          return (
            status.consumer.lagSource === "broker" &&
            status.partitions.length === 3 &&
            status.partitions.every((p) => p.lag === 0)
          )
        },
        40_000,
        () => JSON.stringify(status.partitions),
      )

      const valid = ofKind("valid")
      const deadLettered = ofKind("invalid") + ofKind("malformed")
      assert.strictEqual(status.state, "running")
      assert.deepStrictEqual(
        { ...status.totals.total, batches: 0 },
        {
          batches: 0,
          consumed: records.length,
          valid,
          duplicates: ofKind("duplicate"),
          filtered: 0,
          deadLettered,
          tombstones: 0,
          written: { mongodb: valid, kafka: valid },
        },
      )
      assert.isAbove(status.totals.total.batches, 0)
      assert.strictEqual(await topicSize(names.dlq), deadLettered)

      const tasks = await shippedTasks()
      assert.deepStrictEqual(
        status.dag.nodes.map((n) => [n.name, n.type, n.dependsOn]),
        tasks.map((t) => [t.name, t.type, t.dependsOn]),
      )
      const node = (name: string) => status.dag.nodes.find((n) => n.name === name)!
      const parsed = records.length - ofKind("malformed")
      for (const t of ["mapping", "conversion", "standardization", "dedupe", "quality"]) {
        assert.strictEqual(node(t).total.in, parsed, `${t} in`)
        assert.strictEqual(node(t).total.failures, 0)
        assert.isNotNull(node(t).total.msPerBatch)
      }
      assert.strictEqual(node("dedupe").total.duplicates, ofKind("duplicate"))
      assert.strictEqual(node("quality").total.valid, valid)
      const invalidByTasks = ["mapping", "conversion", "standardization", "quality"]
        .map((t) => node(t).total.invalid)
        .reduce((a, b) => a + b, 0)
      assert.strictEqual(invalidByTasks, ofKind("invalid"))
      for (const sink of ["mongodb", "kafka"]) {
        assert.deepInclude(node(sink).total, { in: valid, valid, invalid: 0, failures: 0 })
      }
      assert.strictEqual(node("mongodb").target, `${names.database}.orders`)
      assert.strictEqual(node("kafka").target, names.sink)

      const parse = status.deadLetters.reasons.filter((r) => r.stage === "parse")
      assert.strictEqual(
        parse.reduce((n, r) => n + r.total, 0),
        ofKind("malformed"),
      )
      assert.isTrue(status.deadLetters.reasons.some((r) => r.stage === "validation" && r.fields.length > 0))

      const sizes = await topicOffsets(names.source)
      assert.deepStrictEqual(
        status.partitions.map((p) => [p.partition, p.assigned, p.committedOffset, p.stalled]),
        sizes.map((high, partition) => [partition, true, String(high), false]),
      )
      for (const p of status.partitions) assert.isNotNull(p.lastCommitAt)
      assert.deepInclude(status.pipeline!, { name: "orders", file: "config/pipeline.yaml", generation: 1 })
      assert.match(status.pipeline!.digest, /^[0-9a-f]{12}$/)
      // The series is sampled once a second: wait for the sample after the last batch.
      const seriesTotal = (snapshot: StatusSnapshot) => snapshot.throughput.in.reduce((a, b) => a + b, 0)
      let sampled = status
      await waitFor(
        "the throughput series to add up to what was consumed",
        async () => {
          sampled = await statusOf(port)
          return seriesTotal(sampled) === records.length
        },
        10_000,
        () => JSON.stringify(sampled.throughput.in),
      )
      assert.strictEqual(seriesTotal(sampled), records.length)

      const body = JSON.stringify(status)
      for (const r of records) {
        if (r.key !== null) assert.notInclude(body, r.key, "a record key is record content")
      }
      assert.notInclude(body, mongoUri)
      const settings = status.settings as { mongodb: { uri: unknown }; kafka: { topicSource: string } }
      assert.match(String(settings.mongodb.uri), /^<redacted/)
      assert.strictEqual(settings.kafka.topicSource, names.source)

      const page = await fetch(`http://127.0.0.1:${port}/`)
      assert.strictEqual(page.status, 200)
      assert.include(await page.text(), "status.js")
      assert.strictEqual(await service.stop("SIGTERM"), 0, service.output())
    } finally {
      await service.stop("SIGKILL")
    }
  })

  it("in Chromium: shows the shipped pipeline, counters rising while the generator runs, and a stall while MongoDB is stopped", {
    timeout: 240_000,
  }, async () => {
    const port = await freePort()
    const mongoPort = await freePort()
    const dir = mkdtempSync(join(tmpdir(), "status-page-ferret-"))
    let ferret = await startFerret(mongoPort, dir)
    const names = freshNames("status-page")
    await createTopic(names.source, 3)
    const service = startService(
      serviceEnv(names, {
        METRICS__PORT: String(port),
        // The test is about showing a stall: server selection gives up after 1 s (default 10 s) and
        // the backoff is 0.2 s to 1 s (default 5 s to 60 s), so that the stall begins within seconds
        // of MongoDB's stop and ends within seconds of its return.
        MONGODB__CONNECTION_STRING: `mongodb://127.0.0.1:${mongoPort}/?directConnection=true&serverSelectionTimeoutMS=1000`,
        PIPELINE__RETRY_DELAY_SECONDS: "0.2",
        PIPELINE__MAX_RETRY_DELAY_SECONDS: "1",
      }),
    )
    const browser = await launchChromium()
    let generator: ChildProcess | undefined
    try {
      const page = await browser.context.newPage()
      const problems: string[] = []
      const elsewhere: string[] = []
      page.on("pageerror", (e) => problems.push(String(e)))
      page.on("request", (r) => {
        if (!r.url().startsWith(`http://127.0.0.1:${port}/`) && !r.url().startsWith("data:"))
          elsewhere.push(r.url())
      })
      await waitFor(
        "the metrics port",
        async () => (await fetch(`http://127.0.0.1:${port}/healthz`)).ok,
        60_000,
      )
      await page.goto(`http://127.0.0.1:${port}/`)
      await waitFor("the pill to say running", async () => (await pillState(page)) === "running", 60_000)

      // The graph: every task of the shipped pipeline, each dependency an edge, the source feeding the first.
      const tasks = await shippedTasks()
      const drawn = await page
        .locator(".node[data-task]")
        .evaluateAll((nodes) => nodes.map((n) => n.getAttribute("data-task")))
      assert.deepStrictEqual([...drawn].sort(), tasks.map((t) => t.name).sort())
      const edges = await page
        .locator("path.edge")
        .evaluateAll((paths) => paths.map((p) => p.getAttribute("data-edge")))
      const expectedEdges = tasks.flatMap((t) =>
        t.dependsOn.length === 0 ? [`source->${t.name}`] : t.dependsOn.map((d) => `${d}->${t.name}`),
      )
      assert.deepStrictEqual([...edges].sort(), expectedEdges.sort())
      for (const sink of tasks.filter((t) => t.type.endsWith("_sink"))) {
        assert.isTrue(await page.locator(`.node.sink[data-task="${sink.name}"]`).isVisible(), sink.name)
      }

      // The keyboard reaches the controls and every task; the colours follow the system's light or dark setting.
      const focused: string[] = []
      for (let i = 0; i < tasks.length + 8; i++) {
        await page.keyboard.press("Tab")
        // A string, evaluated in the page: the tests are compiled without the DOM's types.
        const name = await page.evaluate(
          `(() => { const a = document.activeElement; return a?.getAttribute("data-task") ?? a?.getAttribute("data-node") ?? a?.id ?? "" })()`,
        )
        focused.push(String(name))
      }
      for (const name of ["pause", "source", ...tasks.map((t) => t.name)]) assert.include(focused, name)
      const background = async () =>
        String(await page.evaluate("getComputedStyle(document.body).backgroundColor"))
      const light = await background()
      await page.emulateMedia({ colorScheme: "dark" })
      assert.notStrictEqual(await background(), light, "dark follows the system")
      await page.emulateMedia({ colorScheme: "light" })
      assert.strictEqual(await background(), light)

      // The counters rise while the generator sends.
      generator = spawn(
        process.execPath,
        [
          "--import",
          "tsx",
          "scripts/generate.ts",
          "--output",
          "kafka",
          "--bootstrap-servers",
          kafkaBrokers.join(","),
          "--topic",
          names.source,
          "--rate",
          "40",
          "--seed",
          "73",
        ],
        { cwd: root, env: { PATH: process.env.PATH ?? "", ENV_FILE: "/nonexistent/.env" }, stdio: "ignore" },
      )
      const seen: number[] = []
      await waitFor(
        "the consumed count to rise three times",
        async () => {
          const n = await cellNumber(page, '.node[data-node="source"] td[data-k="total.consumed"]')
          if (seen.length === 0 || n !== seen[seen.length - 1]) seen.push(n)
          await sleep(700)
          return seen.filter((v, i) => i > 0 && v > seen[i - 1]!).length >= 3
        },
        60_000,
        () => JSON.stringify(seen),
      )
      assert.deepStrictEqual(
        seen,
        [...seen].sort((a, b) => a - b),
        "the count only rises",
      )
      assert.isAbove(await cellNumber(page, '.node[data-task="mapping"] td[data-k="total.in"]'), 0)
      assert.isAbove(await cellNumber(page, '.node[data-task="mongodb"] td[data-k="lastMinute.valid"]'), 0)
      assert.isAbove(
        await cellNumber(page, '.node[data-task="kafka"] td[data-k="total.valid"]'),
        0,
        "the Kafka sink has written",
      )
      const chartIn = await page.locator('path.series[data-series="in"]').getAttribute("d")
      assert.isString(chartIn)
      assert.isAbove(await cellNumber(page, '.legend li[data-series="in"]'), 0, "records/s in, now")
      assert.isAbove(await page.locator("#partitions tbody tr[data-partition]").count(), 0)
      await sleep(2_000)
      await page.screenshot({ path: process.env.STATUS_PAGE_SCREENSHOT ?? join(tmpdir(), "status-page.png") })

      // MongoDB stops: the page shows the stall, and goes on updating while it lasts.
      ferret.kill("SIGKILL")
      await waitFor(
        "the pill to say stalled",
        async () => (await pillState(page)) === "stalled",
        90_000,
        () => service.output().slice(-2000),
      )
      const stalledRow = page.locator("#partitions tbody tr.stalled").first()
      const before = await stalledFor(stalledRow)
      await sleep(3_000)
      const after = await stalledFor(stalledRow)
      assert.isAbove(after, before, "the stall's age goes on rising: the page is not frozen")
      // Either MongoDB write of the batch may be the one the row names: the documents or the duplicate window.
      assert.match(
        (await stalledRow.textContent()) ?? "",
        /(the mongodb sink|saving the duplicate window to MongoDB) keeps failing/,
      )
      assert.isTrue(await page.locator("#banner").isVisible())
      assert.include(await page.locator("#banner").textContent(), "stalled")
      assert.notInclude(await page.content(), `mongodb://127.0.0.1:${mongoPort}`)

      // MongoDB returns: the page says running again.
      ferret = await startFerret(mongoPort, dir)
      await waitFor(
        "the pill to say running again",
        async () => (await pillState(page)) === "running",
        90_000,
      )
      assert.isFalse(await page.locator("#banner").isVisible())
      assert.deepStrictEqual(problems, [], "no script errors")
      assert.deepStrictEqual(elsewhere, [], "the page loads nothing from anywhere but the service")
    } finally {
      generator?.kill("SIGTERM")
      await browser.close()
      await service.stop("SIGKILL")
      await stopProcess(ferret)
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe("status page behind METRICS__STATUS_TOKEN", () => {
  // This test is about the token: the service runs with one.
  it("a browser that opens /?token= once sees the page and its live data; without it, 401", async () => {
    const port = await freePort()
    const token = "FAKE-browser-status-token-4d1a"
    const names = freshNames("status-token")
    await createTopic(names.source, 3)
    const service = startService(
      serviceEnv(names, { METRICS__PORT: String(port), METRICS__STATUS_TOKEN: token }),
    )
    const browser = await launchChromium()
    try {
      await waitFor(
        "the pipeline to run",
        async () => service.output().includes('"pipeline running"'),
        60_000,
        service.output,
      )
      const page = await browser.context.newPage()
      const closed = await page.goto(`http://127.0.0.1:${port}/`)
      assert.strictEqual(closed?.status(), 401)
      assert.include(await page.textContent("body"), "/?token=<token>")
      await page.goto(`http://127.0.0.1:${port}/?token=${encodeURIComponent(token)}`)
      assert.strictEqual(new URL(page.url()).search, "", "the token left the address bar")
      await waitFor("the pill to say running", async () => (await pillState(page)) === "running", 60_000)
      const cookies = await browser.context.cookies()
      assert.deepStrictEqual(
        cookies.map((c) => [c.name, c.httpOnly, c.sameSite]),
        [["pipeline_status", true, "Strict"]],
      )
      assert.notInclude(JSON.stringify(cookies), token)
      // The probes stay open; the data needs the token anywhere else than this browser.
      assert.strictEqual((await fetch(`http://127.0.0.1:${port}/readyz`)).status, 200)
      assert.strictEqual((await fetch(`http://127.0.0.1:${port}/status.json`)).status, 401)
    } finally {
      await browser.close()
      await service.stop("SIGKILL")
    }
  })
})

const pillState = (page: Page) => page.locator("#state").getAttribute("data-state")

/** The number shown in an element, whatever the browser's digit grouping. */
const cellNumber = async (page: Page, selector: string) => {
  const text = (await page.locator(selector).first().textContent()) ?? ""
  const digits = /\d[\d.,\s\u00a0\u202f]*/.exec(text)?.[0] ?? ""
  return Number(digits.replace(/\D/g, ""))
}

/** Seconds in "stalled for 1 min 5 s". */
const stalledFor = async (row: ReturnType<Page["locator"]>) => {
  const text = (await row.locator('td[data-k="state"]').textContent()) ?? ""
  const m = /stalled for (?:(\d+) h )?(?:(\d+) min )?(\d+) s/.exec(text)
  assert.isNotNull(m, text)
  return Number(m![1] ?? 0) * 3600 + Number(m![2] ?? 0) * 60 + Number(m![3])
}

const topicOffsets = async (topic: string): Promise<ReadonlyArray<number>> => {
  const admin = kafka.admin()
  await admin.connect()
  try {
    const offsets = await admin.fetchTopicOffsets(topic)
    return offsets.sort((a, b) => a.partition - b.partition).map((o) => Number(o.high))
  } finally {
    await admin.disconnect()
  }
}
