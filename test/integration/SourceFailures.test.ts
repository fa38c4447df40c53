/**
 * What the source meets besides good records, against the real broker and FerretDB, with the
 * service at its defaults: an instance whose event loop stops past the session timeout (it loses
 * its group membership), a bytes budget a few large records fill, a record batch the client
 * cannot decode, and a dead-letter topic that goes away. In each, nothing is committed past a
 * record that went nowhere, the service never exits on its own, and every record ends where it
 * belongs once the cause is gone.
 */
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, assert, describe, it } from "@effect/vitest"
import { encode, type GeneratedRecord, generate, type RecordOptions } from "../../src/Generator/Records.js"
import { produceWithJava } from "../support/JavaProducer.js"
import { freePort } from "./support/Ferret.js"
import {
  committedOffsets,
  createTopic,
  defaultServiceEnv,
  drain,
  dropDatabase,
  freshNames,
  groupCaughtUp,
  kafka,
  produce,
  readTopic,
  startService,
  waitFor,
} from "./support/Service.js"

const databases: string[] = []
afterAll(async () => {
  for (const db of databases) await dropDatabase(db).catch(() => undefined)
})

const options = (seed: number, pattern: RecordOptions["pattern"] = "mixed"): RecordOptions => ({
  seed,
  pattern,
  invalidRatio: 0.1,
  duplicateRatio: 0,
  malformedRatio: 0.02,
  oversizedRatio: 0,
  oversizedBytes: 0,
  baseTime: Date.UTC(2026, 11, 3),
})

const get = (port: number, path: string) =>
  fetch(`http://127.0.0.1:${port}${path}`).then(
    async (r) => ({ status: r.status, body: await r.text() }),
    () => ({ status: 0, body: "" }),
  )

describe("the source under failure", () => {
  it("an instance stopped past the session timeout loses its membership, rejoins and commits again", async () => {
    const names = freshNames("membership")
    databases.push(names.database)
    await createTopic(names.source, 3)
    // Enough backlog that batches are in flight when the process is stopped.
    await produce(names.source, [...generate(options(31), 0, 60_000)])
    // A 10 s session timeout (30 s by default), so that the stop below need last only 15 s: the
    // loss of membership is what is tested, not how long it takes.
    const service = startService(defaultServiceEnv(names, { KAFKA__SESSION_TIMEOUT_SECONDS: "10" }))
    try {
      await waitFor(
        "a first commit",
        async () => [...(await committedOffsets(names.group, names.source)).values()].some((o) => o > 0),
        90_000,
        service.output,
      )
      // The event loop stops for longer than KAFKA__SESSION_TIMEOUT_SECONDS: the group evicts the
      // member, as when a long synchronous stretch blocks it.
      service.child.kill("SIGSTOP")
      await new Promise((r) => setTimeout(r, 15_000))
      service.child.kill("SIGCONT")
      await waitFor(
        "the group to commit every offset after the stop",
        () => groupCaughtUp(names.group, names.source),
        120_000,
        service.output,
      )
      assert.isNull(service.child.exitCode, service.output())
      const warning = service
        .output()
        .split("\n")
        .find((line) => line.includes("no longer counts this instance as a member"))
      assert.isDefined(warning, service.output())
      assert.include(warning!, '"level":"WARN"')
      assert.strictEqual(await service.stop("SIGTERM"), 0, service.output())
    } finally {
      await service.stop("SIGKILL")
    }
  })

  it("a bytes budget that a few large records fill goes on: bytes come back as batches finish", async () => {
    const names = freshNames("bytes-budget")
    databases.push(names.database)
    await createTopic(names.source, 1)
    const [a, b, c, small] = [...generate(options(32, "valid"), 0, 4)] as GeneratedRecord[]
    const padded = (r: GeneratedRecord) =>
      Buffer.from(JSON.stringify({ ...JSON.parse(encode(r).toString()), notes: "x".repeat(400_000) }))
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
    await producer.connect()
    await producer.send({
      topic: names.source,
      acks: -1,
      messages: [
        ...[a!, b!, c!].map((r) => ({ key: r.key, value: padded(r) })),
        { key: small!.key, value: encode(small!) },
      ],
    })
    await producer.disconnect()
    // The setting under test, at its least: three 400 KB records do not fit in it together.
    const env = defaultServiceEnv(names, { PIPELINE__MAX_IN_FLIGHT_BYTES: "1048576" })
    const { code, output } = await drain(env, names, 60_000)
    assert.strictEqual(code, 0, output)
    const written = (await readTopic(names.sink)).length + (await readTopic(names.dlq)).length
    assert.strictEqual(written, 4)
  })

  it("a record batch the client cannot decode stalls its partition visibly; the others go on, and nothing is lost", async () => {
    const names = freshNames("undecodable")
    databases.push(names.database)
    await createTopic(names.source, 2)
    const records = [...generate(options(33), 0, 300)]
    const plain = (from: number, count: number, partition: number) =>
      records.slice(from, from + count).map((r) => ({ partition, key: r.key, value: encode(r) }))
    await produceWithJava({ topic: names.source, records: [...plain(0, 50, 0), ...plain(50, 100, 1)] })
    const [bad] = await produceWithJava({
      topic: names.source,
      compression: "zstd",
      lingerMs: 100,
      batchSize: 1_048_576,
      records: plain(150, 50, 0),
    })
    await produceWithJava({ topic: names.source, records: plain(200, 100, 0) })
    assert.strictEqual(bad!.offset, "50")

    const port = await freePort()
    const env = defaultServiceEnv(names, {
      METRICS__PORT: String(port),
      // The test is about the stall being reported, not about how long /readyz waits for it (60 s).
      PIPELINE__STALL_TIMEOUT_SECONDS: "5",
      NODE_OPTIONS: `--import=${join(dirname(fileURLToPath(import.meta.url)), "support", "WithoutZstd.mjs")}`,
    })
    const service = startService(env)
    try {
      await waitFor(
        "partition 1 to be committed to its end, partition 0 to the undecodable batch",
        async () => {
          const offsets = await committedOffsets(names.group, names.source)
          return offsets.get(0) === 50 && offsets.get(1) === 100
        },
        60_000,
        service.output,
      )
      await waitFor(
        "/readyz to report the stall",
        async () => {
          const ready = await get(port, "/readyz")
          return ready.status === 503 && ready.body.includes("partition 0 stalled")
        },
        30_000,
        service.output,
      )
      const metrics = await get(port, "/metrics")
      assert.match(metrics.body, /pipeline_partition_stalled\{[^}]*partition="0"[^}]*\} 1/)
      const warning = service
        .output()
        .split("\n")
        .find((line) => line.includes("cannot be decoded"))
      assert.isDefined(warning, service.output())
      assert.include(warning!, '"partition":0')
      assert.include(warning!, '"offset":"50"')
      assert.include(warning!, `"topic":"${names.source}"`)
      assert.include(warning!, "ZSTD compression withheld")
      assert.strictEqual((await committedOffsets(names.group, names.source)).get(0), 50)
      assert.isNull(service.child.exitCode, "the service is still running")
      assert.strictEqual(await service.stop("SIGTERM"), 0, service.output())
    } finally {
      await service.stop("SIGKILL")
    }

    // With the codec, the same offsets are read again: everything ends somewhere, once.
    const { code, output } = await drain(defaultServiceEnv(names), names)
    assert.strictEqual(code, 0, output)
    const ended = [...(await readTopic(names.sink)), ...(await readTopic(names.dlq))].map(
      (m) => `${m.headers["pipeline.source.partition"]}:${m.headers["pipeline.source.offset"]}`,
    )
    assert.strictEqual(new Set(ended).size, 300)
  })

  it("a dead-letter topic that goes away stalls the partition until it is back; nothing is committed past its records", async () => {
    const names = freshNames("dlq-gone")
    databases.push(names.database)
    await createTopic(names.source, 1)
    const records = [...generate(options(34, "valid"), 0, 40)]
    await produce(names.source, records.slice(0, 20))
    const port = await freePort()
    // The test is about the stall being reported, not about how long /readyz waits for it (60 s).
    const env = defaultServiceEnv(names, {
      METRICS__PORT: String(port),
      PIPELINE__STALL_TIMEOUT_SECONDS: "5",
    })
    const service = startService(env)
    try {
      await waitFor(
        "the first records",
        () => groupCaughtUp(names.group, names.source),
        60_000,
        service.output,
      )
      const admin = kafka.admin()
      await admin.connect()
      try {
        await admin.deleteTopics({ topics: [names.dlq] })
        const producer = kafka.producer()
        await producer.connect()
        await producer.send({
          topic: names.source,
          messages: [
            ...records.slice(20, 30).map((r) => ({ key: r.key, value: encode(r) })),
            { key: "malformed-1", value: "{not json" },
            ...records.slice(30, 40).map((r) => ({ key: r.key, value: encode(r) })),
          ],
        })
        await producer.disconnect()
        await waitFor(
          "/readyz to report the stall of the dead-letter topic",
          async () => {
            const ready = await get(port, "/readyz")
            return ready.status === 503 && ready.body.includes("the dead-letter topic")
          },
          60_000,
          service.output,
        )
        assert.strictEqual((await committedOffsets(names.group, names.source)).get(0), 20)
        await createTopic(names.dlq, 1)
      } finally {
        await admin.disconnect()
      }
      await waitFor(
        "every offset committed",
        () => groupCaughtUp(names.group, names.source),
        120_000,
        service.output,
      )
      // At least once: a dead letter retried across the outage may be there twice.
      const letters = await readTopic(names.dlq)
      const malformed = letters.filter((m) => m.value?.toString() === "{not json")
      assert.isAtLeast(malformed.length, 1)
      assert.strictEqual(malformed[0]!.headers["pipeline.source.offset"], "30")
      // The dead letters of offsets 0-19 went with the deleted topic; from 20 on, each record is somewhere.
      const ended = [...(await readTopic(names.sink)), ...letters]
        .map((m) => Number(m.headers["pipeline.source.offset"]))
        .filter((offset) => offset >= 20)
      assert.strictEqual(
        new Set(ended).size,
        21,
        "every record from offset 20 on the sink topic or the dead-letter topic",
      )
      assert.isNull(service.child.exitCode)
      assert.strictEqual(await service.stop("SIGTERM"), 0, service.output())
    } finally {
      await service.stop("SIGKILL")
    }
    // The stall's backoff at its defaults (up to a minute between tries) comes on top of the waits.
  }, 300_000)
})
