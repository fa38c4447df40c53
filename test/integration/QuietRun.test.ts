/**
 * A clean start and a clean run print no ERROR line: the service at its defaults, against the
 * real broker and FerretDB, on topics and a group it has never seen (it creates the topics
 * itself, so the broker's first answers for them are the "not yet" kind), drains generated
 * records and stops on SIGTERM. Whatever kafkajs logs on the way is at the level of what it
 * is (Observability/KafkaClientLogs.ts), and counted.
 */
import { afterAll, assert, describe, it } from "@effect/vitest"
import { defaultRecordOptions, generate } from "../../src/Generator/Records.js"
import { freePort } from "./support/Ferret.js"
import {
  dropDatabase,
  freshNames,
  groupCaughtUp,
  produce,
  serviceEnv,
  startService,
  waitFor,
} from "./support/Service.js"

const databases: string[] = []
afterAll(async () => {
  for (const db of databases) await dropDatabase(db).catch(() => undefined)
})

interface Line {
  readonly level?: string
  readonly message?: unknown
}

describe("a clean run", () => {
  it("starts, drains and stops on SIGTERM without one ERROR line", { timeout: 180_000 }, async () => {
    const names = freshNames("quiet")
    databases.push(names.database)
    const metricsPort = await freePort()
    // The metrics port is on (the tests' default is off) to read the Kafka client's counts.
    const service = startService(serviceEnv(names, { METRICS__PORT: String(metricsPort) }))
    try {
      await waitFor(
        "the pipeline to run",
        async () => service.output().includes('"pipeline running"'),
        60_000,
        service.output,
      )
      await produce(names.source, [...generate({ ...defaultRecordOptions, seed: 25 }, 0, 2_000)])
      await waitFor(
        "the group to commit every offset",
        () => groupCaughtUp(names.group, names.source),
        90_000,
        service.output,
      )
      const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text()
      const clientErrors = metrics
        .split("\n")
        .filter((l) => l.startsWith("pipeline_kafka_client_events_total{") && l.includes('level="ERROR"'))
      assert.deepStrictEqual(clientErrors, [], "the Kafka client counted no ERROR line")
      assert.strictEqual(await service.stop("SIGTERM"), 0)
    } finally {
      await service.stop("SIGKILL")
    }
    const lines = service
      .output()
      .split("\n")
      .filter((l) => l.trim() !== "")
    const parsed = lines.map((text) => {
      try {
        return { text, line: JSON.parse(text) as Line }
      } catch {
        return { text, line: undefined }
      }
    })
    assert.deepStrictEqual(
      parsed.filter((p) => p.line === undefined).map((p) => p.text),
      [],
      "every line is a JSON log line",
    )
    assert.isTrue(
      parsed.some((p) => p.line?.message === "pipeline stopped"),
      "the run went as far as the stop",
    )
    assert.deepStrictEqual(
      parsed.filter((p) => p.line?.level === "ERROR" || p.line?.level === "FATAL").map((p) => p.text),
      [],
    )
  })
})
