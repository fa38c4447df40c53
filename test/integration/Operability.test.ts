/**
 * The service as an operator sees it, against the real stack: /healthz, /readyz following the
 * group join and MongoDB (its own FerretDB instance, stopped and restarted here), /metrics
 * counters that add up to what was pushed, consumer lag per partition, batch log lines with
 * their coordinates, hot reload of the pipeline file, and a clean stop on SIGTERM.
 */
import type { ChildProcess } from "node:child_process"
import { mkdtempSync, readFileSync, renameSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { defaultRecordOptions, generate } from "../../src/Generator/Records.js"
import { freePort, startFerret, stopProcess } from "./support/Ferret.js"
import {
  createTopic,
  freshNames,
  mongoIds,
  produce,
  type RunningService,
  serviceEnv,
  startService,
  waitFor,
} from "./support/Service.js"

const get = (port: number, path: string) =>
  fetch(`http://127.0.0.1:${port}${path}`).then(
    async (r) => ({ status: r.status, body: await r.text() }),
    () => ({ status: 0, body: "" }),
  )

/** One sample of the Prometheus text, by name and labels (0 when absent). */
const sample = (text: string, name: string, labels = ""): number => {
  const line = text.split("\n").find((l) => l.startsWith(`${name}${labels === "" ? "" : `{${labels}}`} `))
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(" ") + 1))
}

interface LogLine {
  readonly message: string
  readonly level: string
  readonly timestamp: string
  readonly annotations: Record<string, unknown>
}

const logLines = (service: RunningService): ReadonlyArray<LogLine> =>
  service
    .output()
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as LogLine)

describe("operating the service", () => {
  const names = freshNames("operability")
  const dir = mkdtempSync(join(tmpdir(), "operability-"))
  const pipelineFile = join(dir, "pipeline.yaml")
  const shipped = readFileSync("config/pipeline.yaml", "utf8")
  const options = { ...defaultRecordOptions, seed: 7, malformedRatio: 0.05 }
  const first = [...generate(options, 0, 300)]
  const second = [...generate(options, 300, 100)]
  let mongoPort = 0
  let metricsPort = 0
  let ferret: ChildProcess | undefined
  let service: RunningService
  const metrics = async () => (await get(metricsPort, "/metrics")).body

  beforeAll(async () => {
    writeFileSync(pipelineFile, shipped)
    mongoPort = await freePort()
    metricsPort = await freePort()
    ferret = await startFerret(mongoPort, join(dir, "ferret"))
    await createTopic(names.source, 3)
    service = startService(
      serviceEnv(names, {
        MONGODB__CONNECTION_STRING: `mongodb://127.0.0.1:${mongoPort}/?serverSelectionTimeoutMS=2000`,
        METRICS__PORT: String(metricsPort),
        METRICS__PROGRESS_INTERVAL_SECONDS: "1",
        PIPELINE__FILE: pipelineFile,
        LOGGING__LEVEL: "DEBUG",
      }),
    )
  })

  afterAll(async () => {
    await service?.stop("SIGKILL")
    if (ferret !== undefined) await stopProcess(ferret)
  })

  it("answers /healthz, and /readyz turns 200 once the consumer has joined its group", async () => {
    await waitFor(
      "/healthz",
      async () => (await get(metricsPort, "/healthz")).status === 200,
      60_000,
      service.output,
    )
    await waitFor(
      "/readyz 200",
      async () => (await get(metricsPort, "/readyz")).status === 200,
      60_000,
      service.output,
    )
    assert.deepStrictEqual(JSON.parse((await get(metricsPort, "/readyz")).body), { ready: true })
    assert.strictEqual((await get(metricsPort, "/nothing-here")).status, 404)
  })

  it("counts on /metrics what was pushed, and every record ends in exactly one place", async () => {
    await produce(names.source, first)
    await waitFor(
      `${first.length} records consumed`,
      async () => sample(await metrics(), "pipeline_records_consumed_total") === first.length,
      90_000,
      service.output,
    )
    const text = await metrics()
    const valid = sample(text, "pipeline_records_valid_total")
    const duplicates = sample(text, "pipeline_records_duplicate_total")
    const deadLettered = ["parse", "validation", "task", "mongodb_sink"]
      .map((stage) => sample(text, "pipeline_records_dead_lettered_total", `stage="${stage}"`))
      .reduce((a, b) => a + b, 0)
    assert.strictEqual(valid + duplicates + deadLettered, first.length)
    assert.strictEqual(
      sample(text, "pipeline_records_dead_lettered_total", 'stage="parse"'),
      first.filter((r) => r.kind === "malformed").length,
    )
    assert.isAbove(valid, 0)
    assert.strictEqual(sample(text, "pipeline_records_written_total", 'sink="mongodb"'), valid)
    assert.strictEqual(sample(text, "pipeline_records_written_total", 'sink="kafka"'), valid)
    assert.strictEqual((await mongoIds(names.database, `mongodb://127.0.0.1:${mongoPort}/`)).length, valid)
    assert.isAbove(sample(text, "pipeline_batches_total"), 0)
    assert.strictEqual(sample(text, "pipeline_stalled"), 0)
    assert.isAbove(sample(text, "pipeline_task_duration_seconds_count", 'task="quality"'), 0)
    assert.include(text, "pipeline_batch_duration_seconds_bucket{le=")
  })

  it("reports the consumer lag of every partition, from the broker, and 0 once caught up", async () => {
    await waitFor(
      "lag 0 on every partition",
      async () => {
        const text = await metrics()
        return [0, 1, 2].every(
          (p) =>
            text.includes(`pipeline_consumer_lag{partition="${p}"} `) &&
            sample(text, "pipeline_consumer_lag", `partition="${p}"`) === 0,
        )
      },
      30_000,
      service.output,
    )
    await waitFor(
      "a progress line with the lag",
      async () =>
        logLines(service).some(
          (l) => l.message.startsWith("progress:") && l.message.includes(`${first.length} consumed, lag 0`),
        ),
      30_000,
    )
    const progress = logLines(service).filter((l) => l.message.startsWith("progress:"))
    assert.deepStrictEqual(progress[progress.length - 1]!.annotations.consumer_lag, { 0: 0, 1: 0, 2: 0 })
    assert.strictEqual(progress[progress.length - 1]!.annotations.lag_source, "broker")
  })

  it("puts the batch's correlation id, topic, partition and offsets on every batch line, and times every task", () => {
    const lines = logLines(service)
    const batchLines = lines.filter((l) => "correlation_id" in l.annotations)
    assert.isAbove(batchLines.length, 0)
    for (const line of batchLines) {
      const { correlation_id, topic, partition, offsets } = line.annotations
      assert.strictEqual(topic, names.source)
      assert.isNumber(partition)
      assert.match(String(offsets), /^\d+-\d+$/)
      assert.strictEqual(correlation_id, `${names.source}-${String(partition)}-${String(offsets)}`)
    }
    const timed = new Set(
      batchLines.filter((l) => typeof l.annotations.duration_ms === "number").map((l) => l.annotations.task),
    )
    for (const task of [
      "mapping",
      "conversion",
      "standardization",
      "dedupe",
      "quality",
      "mongodb",
      "kafka",
    ]) {
      assert.isTrue(timed.has(task), `a DEBUG line with the duration of ${task}`)
    }
  })

  it("reloads a changed pipeline file, rejects a broken one, and keeps running either way", async () => {
    const replace = (text: string) => {
      writeFileSync(`${pipelineFile}.tmp`, text)
      renameSync(`${pipelineFile}.tmp`, pipelineFile)
    }
    replace(shipped.replace("maxInvalidRatio: 0.5", "maxInvalidRatio: 0.75"))
    await waitFor(
      "the reload",
      async () => sample(await metrics(), "pipeline_reloads_total", 'outcome="applied"') === 1,
      30_000,
      service.output,
    )
    const reloaded = logLines(service).find((l) => l.message.startsWith("pipeline reloaded"))
    assert.include(reloaded?.message, "the duplicate window starts empty")
    assert.include(reloaded?.message, "environment settings are unchanged")

    replace(shipped.replace("type: duplicate_check", "type: no_such_task"))
    await waitFor(
      "the rejection",
      async () => sample(await metrics(), "pipeline_reloads_total", 'outcome="rejected"') === 1,
      30_000,
      service.output,
    )
    const rejected = logLines(service).find((l) => l.message.startsWith("pipeline reload rejected"))
    assert.strictEqual(rejected?.level, "ERROR")
    assert.include(JSON.stringify(rejected?.annotations.problems), "no_such_task")

    await produce(names.source, second)
    await waitFor(
      "the records after the reloads",
      async () => sample(await metrics(), "pipeline_records_consumed_total") === first.length + second.length,
      90_000,
      service.output,
    )
  })

  it("answers /readyz 503 with a JSON reason while MongoDB is down, and 200 once it is back", async () => {
    if (ferret !== undefined) await stopProcess(ferret)
    await waitFor("/readyz 503", async () => (await get(metricsPort, "/readyz")).status === 503, 30_000)
    const down = JSON.parse((await get(metricsPort, "/readyz")).body) as { ready: boolean; reasons: string[] }
    assert.isFalse(down.ready)
    assert.isTrue(
      down.reasons.some((r) => r.startsWith("MongoDB does not answer")),
      JSON.stringify(down),
    )
    // Alive all the same: liveness is not readiness.
    assert.strictEqual((await get(metricsPort, "/healthz")).status, 200)
    ferret = await startFerret(mongoPort, join(dir, "ferret"))
    await waitFor("/readyz 200 again", async () => (await get(metricsPort, "/readyz")).status === 200, 60_000)
  })

  it("stops on SIGTERM with exit code 0 and logs its totals", async () => {
    assert.strictEqual(await service.stop("SIGTERM"), 0)
    const stopped = logLines(service).find((l) => l.message === "pipeline stopped")
    const summary = stopped?.annotations.summary as Record<string, number> | undefined
    assert.strictEqual(summary?.consumed, first.length + second.length)
  })
})
