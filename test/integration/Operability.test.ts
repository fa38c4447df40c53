/**
 * The service as an operator sees it, against the real stack: /healthz, /readyz following the
 * group join and MongoDB (its own FerretDB instance, stopped and restarted here), /metrics
 * counters that add up to what was pushed, consumer lag per partition, batch log lines with
 * their coordinates, hot reload of the pipeline file, and a clean stop on SIGTERM. Each test
 * runs its own service (and FerretDB) on its own topics, so none depends on another.
 */
import type { ChildProcess } from "node:child_process"
import { mkdtempSync, readFileSync, renameSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
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

interface Running {
  readonly names: ReturnType<typeof freshNames>
  readonly service: RunningService
  readonly metricsPort: number
  readonly mongoPort: number
  readonly pipelineFile: string
  readonly dir: string
  readonly metrics: () => Promise<string>
  /** SIGKILLs FerretDB, or starts it again on its data. */
  readonly ferret: { readonly stop: () => Promise<void>; readonly start: () => Promise<void> }
}

const shipped = readFileSync("config/pipeline.yaml", "utf8")
const options = { ...defaultRecordOptions, seed: 7, malformedRatio: 0.05 }

/** A service with its own FerretDB, topics, metrics port and copy of the shipped pipeline file. */
const withService = async (prefix: string, test: (run: Running) => Promise<void>) => {
  const names = freshNames(prefix)
  const dir = mkdtempSync(join(tmpdir(), `${prefix}-`))
  const pipelineFile = join(dir, "pipeline.yaml")
  writeFileSync(pipelineFile, shipped)
  const mongoPort = await freePort()
  const metricsPort = await freePort()
  let ferret: ChildProcess | undefined = await startFerret(mongoPort, join(dir, "ferret"))
  await createTopic(names.source, 3)
  const service = startService(
    serviceEnv(names, {
      MONGODB__CONNECTION_STRING: `mongodb://127.0.0.1:${mongoPort}/?serverSelectionTimeoutMS=2000`,
      METRICS__PORT: String(metricsPort),
      // Progress lines every second (default 30 s), so that the test sees one with the lag soon.
      METRICS__PROGRESS_INTERVAL_SECONDS: "1",
      PIPELINE__FILE: pipelineFile,
      // The per-task duration lines are DEBUG.
      LOGGING__LEVEL: "DEBUG",
    }),
  )
  try {
    await test({
      names,
      service,
      metricsPort,
      mongoPort,
      pipelineFile,
      dir,
      metrics: async () => (await get(metricsPort, "/metrics")).body,
      ferret: {
        stop: async () => {
          if (ferret !== undefined) await stopProcess(ferret)
          ferret = undefined
        },
        start: async () => {
          ferret = await startFerret(mongoPort, join(dir, "ferret"))
        },
      },
    })
  } finally {
    await service.stop("SIGKILL")
    if (ferret !== undefined) await stopProcess(ferret)
  }
}

const untilReady = async ({ metricsPort, service }: Running) => {
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
}

const untilConsumed = (run: Running, n: number) =>
  waitFor(
    `${n} records consumed`,
    async () => sample(await run.metrics(), "pipeline_records_consumed_total") === n,
    90_000,
    run.service.output,
  )

describe("operating the service", () => {
  it("answers /healthz and /readyz, counts on /metrics what was pushed, reports lag, logs every batch with its coordinates, and stops on SIGTERM with its totals", () =>
    withService("operability", async (run) => {
      const { names, service, metricsPort, mongoPort } = run
      await untilReady(run)
      assert.deepStrictEqual(JSON.parse((await get(metricsPort, "/readyz")).body), { ready: true })
      assert.strictEqual((await get(metricsPort, "/nothing-here")).status, 404)

      // /metrics: every record ends in exactly one place.
      const records = [...generate(options, 0, 300)]
      await produce(names.source, records)
      await untilConsumed(run, records.length)
      const text = await run.metrics()
      const valid = sample(text, "pipeline_records_valid_total")
      const duplicates = sample(text, "pipeline_records_duplicate_total")
      const deadLettered = ["parse", "validation", "task", "mongodb_sink", "kafka_sink"]
        .map((stage) => sample(text, "pipeline_records_dead_lettered_total", `stage="${stage}"`))
        .reduce((a, b) => a + b, 0)
      assert.strictEqual(valid + duplicates + deadLettered, records.length)
      assert.strictEqual(
        sample(text, "pipeline_records_dead_lettered_total", 'stage="parse"'),
        records.filter((r) => r.kind === "malformed").length,
      )
      assert.isAbove(valid, 0)
      assert.strictEqual(sample(text, "pipeline_records_written_total", 'sink="mongodb"'), valid)
      assert.strictEqual(sample(text, "pipeline_records_written_total", 'sink="kafka"'), valid)
      assert.strictEqual((await mongoIds(names.database, `mongodb://127.0.0.1:${mongoPort}/`)).length, valid)
      assert.isAbove(sample(text, "pipeline_batches_total"), 0)
      assert.strictEqual(sample(text, "pipeline_stalled"), 0)
      assert.isAbove(sample(text, "pipeline_task_duration_seconds_count", 'task="quality"'), 0)
      assert.include(text, "pipeline_batch_duration_seconds_bucket{le=")
      // Each task's own counters.
      const parsed = records.length - records.filter((r) => r.kind === "malformed").length
      assert.strictEqual(
        sample(text, "pipeline_task_records_total", 'task="mapping",counter="records"'),
        parsed,
      )
      assert.strictEqual(
        sample(text, "pipeline_task_records_total", 'task="dedupe",counter="duplicates"'),
        duplicates,
      )

      // Lag: per partition, from the broker, 0 once caught up; and in the progress line.
      await waitFor(
        "lag 0 on every partition",
        async () => {
          const now = await run.metrics()
          return [0, 1, 2].every(
            (p) =>
              now.includes(`pipeline_consumer_lag{partition="${p}"} `) &&
              sample(now, "pipeline_consumer_lag", `partition="${p}"`) === 0,
          )
        },
        30_000,
        service.output,
      )
      await waitFor(
        "a progress line with the lag",
        async () =>
          logLines(service).some(
            (l) =>
              l.message.startsWith("progress:") && l.message.includes(`${records.length} consumed, lag 0`),
          ),
        30_000,
      )
      const progress = logLines(service).filter((l) => l.message.startsWith("progress:"))
      assert.deepStrictEqual(progress[progress.length - 1]!.annotations.consumer_lag, { 0: 0, 1: 0, 2: 0 })
      assert.strictEqual(progress[progress.length - 1]!.annotations.lag_source, "broker")

      // Batch lines: the batch's correlation id, topic, partition and offsets; every task timed.
      const batchLines = logLines(service).filter((l) => "correlation_id" in l.annotations)
      assert.isAbove(batchLines.length, 0)
      for (const line of batchLines) {
        const { correlation_id, topic, partition, offsets } = line.annotations
        assert.strictEqual(topic, names.source)
        assert.isNumber(partition)
        assert.match(String(offsets), /^\d+-\d+$/)
        assert.strictEqual(correlation_id, `${names.source}-${String(partition)}-${String(offsets)}`)
      }
      const timed = new Set(
        batchLines
          .filter((l) => typeof l.annotations.duration_ms === "number")
          .map((l) => l.annotations.task),
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

      // SIGTERM: exit 0, the totals logged.
      assert.strictEqual(await service.stop("SIGTERM"), 0)
      const stopped = logLines(service).find((l) => l.message === "pipeline stopped")
      const summary = stopped?.annotations.summary as Record<string, number> | undefined
      assert.strictEqual(summary?.consumed, records.length)
    }))

  it("reloads a changed pipeline file, rejects a broken one, and keeps running either way", () =>
    withService("reload", async (run) => {
      const { names, service, pipelineFile } = run
      await untilReady(run)
      const replace = (text: string) => {
        writeFileSync(`${pipelineFile}.tmp`, text)
        renameSync(`${pipelineFile}.tmp`, pipelineFile)
      }
      replace(shipped.replace("maxInvalidRatio: 0.5", "maxInvalidRatio: 0.75"))
      await waitFor(
        "the reload",
        async () => sample(await run.metrics(), "pipeline_reloads_total", 'outcome="applied"') === 1,
        30_000,
        service.output,
      )
      const reloaded = logLines(service).find((l) => l.message.startsWith("pipeline reloaded"))
      assert.include(reloaded?.message, "the duplicate window starts empty")
      assert.include(reloaded?.message, "environment settings are unchanged")

      replace(shipped.replace("type: duplicate_check", "type: no_such_task"))
      await waitFor(
        "the rejection",
        async () => sample(await run.metrics(), "pipeline_reloads_total", 'outcome="rejected"') === 1,
        30_000,
        service.output,
      )
      const rejected = logLines(service).find((l) => l.message.startsWith("pipeline reload rejected"))
      assert.strictEqual(rejected?.level, "ERROR")
      assert.include(JSON.stringify(rejected?.annotations.problems), "no_such_task")

      const records = [...generate(options, 300, 100)]
      await produce(names.source, records)
      await untilConsumed(run, records.length)
      assert.strictEqual(await service.stop("SIGTERM"), 0, service.output())
    }))

  it("answers /readyz 503 with a JSON reason while MongoDB is down, and 200 once it is back", () =>
    withService("readyz", async (run) => {
      const { metricsPort } = run
      await untilReady(run)
      await run.ferret.stop()
      await waitFor("/readyz 503", async () => (await get(metricsPort, "/readyz")).status === 503, 30_000)
      const down = JSON.parse((await get(metricsPort, "/readyz")).body) as {
        ready: boolean
        reasons: string[]
      }
      assert.isFalse(down.ready)
      assert.isTrue(
        down.reasons.some((r) => r.startsWith("MongoDB does not answer")),
        JSON.stringify(down),
      )
      // Alive all the same: liveness is not readiness.
      assert.strictEqual((await get(metricsPort, "/healthz")).status, 200)
      await run.ferret.start()
      await waitFor(
        "/readyz 200 again",
        async () => (await get(metricsPort, "/readyz")).status === 200,
        60_000,
      )
    }))
})
