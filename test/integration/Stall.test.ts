/**
 * A MongoDB that hangs or goes away stalls the partition, visibly, and loses nothing: the
 * batch's write is retried without end, nothing is committed, the log says "stalled" at
 * WARNING with the partition, the per-partition gauge reads 1 and /readyz answers 503 with the
 * partition's reason once the stall outlasts PIPELINE__STALL_TIMEOUT_SECONDS. When MongoDB
 * answers again the group catches up, every valid record is in MongoDB, /readyz is 200 and the
 * gauge 0.
 *
 * Each test has its own FerretDB (free port, temporary data dir). "Hung" puts a TCP proxy in
 * front of it that turns into a black hole (connections accepted and held open, nothing
 * forwarded either way): the case a socket timeout exists for. "Stopped" kills FerretDB with
 * SIGKILL and starts it again on the same port and data.
 */
import type { ChildProcess } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { connect, createServer, type Socket } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { defaultRecordOptions, type GeneratedRecord, generate } from "../../src/Generator/Records.js"
import { freePort, startFerret, stopProcess } from "./support/Ferret.js"
import {
  createTopic,
  defaultServiceEnv,
  freshNames,
  groupCaughtUp,
  kafka,
  mongoIds,
  produce,
  type RunningService,
  startService,
  waitFor,
} from "./support/Service.js"

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

const get = (port: number, path: string) =>
  fetch(`http://127.0.0.1:${port}${path}`).then(
    async (r) => ({ status: r.status, body: await r.text() }),
    () => ({ status: 0, body: "" }),
  )

interface ReadyBody {
  readonly ready: boolean
  readonly reasons?: ReadonlyArray<string>
}

/** One sample of the Prometheus text, by name and labels (undefined when absent). */
const sample = (text: string, name: string, labels = ""): number | undefined => {
  const line = text.split("\n").find((l) => l.startsWith(`${name}${labels === "" ? "" : `{${labels}}`} `))
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(" ") + 1))
}

interface LogLine {
  /** The first part of the message (a line logged with extra values has an array). */
  readonly message: string
  readonly level: string
  readonly annotations: Record<string, unknown>
}

const logLines = (service: RunningService): ReadonlyArray<LogLine> =>
  service
    .output()
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .flatMap((l) => {
      try {
        const line = JSON.parse(l) as Omit<LogLine, "message"> & { readonly message: unknown }
        return [{ ...line, message: String(Array.isArray(line.message) ? line.message[0] : line.message) }]
      } catch {
        return []
      }
    })

/** The group's committed offset of partition 0 (-1 when nothing is committed). */
const committedOffset = async (group: string, topic: string): Promise<number> => {
  const admin = kafka.admin()
  await admin.connect()
  try {
    const [committed] = await admin.fetchOffsets({ groupId: group, topics: [topic] })
    return Number(committed?.partitions.find((p) => p.partition === 0)?.offset ?? -1)
  } finally {
    await admin.disconnect()
  }
}

interface BlackHoleProxy {
  readonly port: number
  /** Existing connections stay open but forward nothing; new ones are accepted and get nothing. */
  readonly blackHole: () => void
  /** New connections forward again; the black-holed ones are closed (their byte streams are cut). */
  readonly restore: () => void
  readonly close: () => Promise<void>
}

/** A TCP proxy to 127.0.0.1:`target` that can turn into a black hole. */
const startProxy = async (target: number): Promise<BlackHoleProxy> => {
  let holding = false
  const pairs = new Set<{ client: Socket; upstream: Socket | undefined; held: boolean }>()
  const server = createServer((client) => {
    const pair = { client, upstream: undefined as Socket | undefined, held: holding }
    pairs.add(pair)
    const drop = () => {
      pairs.delete(pair)
      client.destroy()
      pair.upstream?.destroy()
    }
    client.on("error", drop)
    client.on("close", drop)
    if (pair.held) {
      // Read and discard, answer nothing, never close.
      client.on("data", () => undefined)
      return
    }
    const upstream = connect(target, "127.0.0.1")
    pair.upstream = upstream
    upstream.on("error", () => (pair.held ? upstream.destroy() : drop()))
    upstream.on("close", () => (pair.held ? undefined : drop()))
    client.on("data", (d: Buffer) => {
      if (!pair.held) upstream.write(d)
    })
    upstream.on("data", (d: Buffer) => {
      if (!pair.held) client.write(d)
    })
  })
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done))
  const address = server.address()
  const port = typeof address === "object" && address !== null ? address.port : 0
  return {
    port,
    blackHole: () => {
      holding = true
      for (const pair of pairs) pair.held = true
    },
    restore: () => {
      holding = false
      for (const pair of [...pairs]) {
        if (!pair.held) continue
        pairs.delete(pair)
        pair.client.destroy()
        pair.upstream?.destroy()
      }
    },
    close: async () => {
      for (const pair of pairs) {
        pair.client.destroy()
        pair.upstream?.destroy()
      }
      pairs.clear()
      await new Promise<void>((done) => server.close(() => done()))
    },
  }
}

const killProcess = (child: ChildProcess) =>
  new Promise<void>((done) => {
    if (child.exitCode !== null || child.signalCode !== null) return done()
    child.once("exit", () => done())
    child.kill("SIGKILL")
  })

/** Settings for a test about stall timing; batch size, concurrency and retry counts stay at their defaults. */
const stallSettings = {
  // The default (60 s) would make the test wait a minute before /readyz may say "stalled".
  PIPELINE__STALL_TIMEOUT_SECONDS: "5",
  // The default (30 s) is how long a black-holed socket read or a pool wait lasts before it is a
  // (transient) timeout; every retry of the stalled write would wait that long first.
  MONGODB__TIMEOUT_SECONDS: "3",
  // The defaults (5 s, doubling up to 60 s) space the endless retries of a stalled batch so far
  // apart that the catch-up after MongoDB returns could wait up to a minute for the next one.
  PIPELINE__RETRY_DELAY_SECONDS: "0.5",
  // Also caps the MongoDB task's own retries in the DAG (1 s doubling, five times: ~31 s at the
  // default cap), which come before the batch counts as stalled.
  PIPELINE__MAX_RETRY_DELAY_SECONDS: "2",
}

interface Outage {
  /** What the service connects to. */
  readonly uri: string
  /** MongoDB stops answering. */
  readonly begin: () => Promise<void>
  /** MongoDB answers again. */
  readonly end: () => Promise<void>
}

/**
 * The scenario of both tests: records written, then an outage while more arrive, checked while
 * it lasts, then the catch-up checked. Returns the timings seen, in ms from the outage's start.
 */
const stallAndRecover = async (
  prefix: string,
  seed: number,
  mongoPort: number,
  outage: Outage,
): Promise<Record<string, number>> => {
  const metricsPort = await freePort()
  const names = freshNames(prefix)
  await createTopic(names.source, 1)
  const records: ReadonlyArray<GeneratedRecord> = [...generate({ ...defaultRecordOptions, seed }, 0, 400)]
  const before = records.slice(0, 200)
  const during = records.slice(200)
  const direct = `mongodb://127.0.0.1:${mongoPort}/`
  const timings: Record<string, number> = {}

  const service = startService(
    defaultServiceEnv(names, {
      ...stallSettings,
      MONGODB__CONNECTION_STRING: outage.uri,
      METRICS__PORT: String(metricsPort),
    }),
  )
  const readyz = async () => {
    const { status, body } = await get(metricsPort, "/readyz")
    return { status, body: (body === "" ? { ready: false } : JSON.parse(body)) as ReadyBody }
  }
  const metrics = async () => (await get(metricsPort, "/metrics")).body
  try {
    await produce(names.source, before)
    await waitFor(
      "the first records committed",
      () => groupCaughtUp(names.group, names.source),
      60_000,
      service.output,
    )
    assert.isAbove((await mongoIds(names.database, direct)).length, 0, "the first documents are in MongoDB")
    await waitFor("/readyz 200", async () => (await readyz()).status === 200, 30_000, service.output)
    const committedBefore = await committedOffset(names.group, names.source)
    assert.strictEqual(committedBefore, before.length)

    const start = Date.now()
    await outage.begin()
    await produce(names.source, during)

    // Each /readyz pings MongoDB; one probe a second, like a (busy) orchestrator, not four.
    let lastReady: ReadyBody = { ready: true }
    const committedSeen = new Set<number>()
    await waitFor(
      "/readyz 503 naming partition 0 as stalled",
      async () => {
        await sleep(750)
        committedSeen.add(await committedOffset(names.group, names.source))
        const { status, body } = await readyz()
        lastReady = body
        return status === 503 && (body.reasons ?? []).some((r) => r.startsWith("partition 0 stalled"))
      },
      90_000,
      () => `${JSON.stringify(lastReady)}\n${service.output()}`,
    )
    timings.readyz503 = Date.now() - start
    const reason = lastReady.reasons!.find((r) => r.startsWith("partition 0 stalled"))!
    assert.isFalse(lastReady.ready)
    // Either MongoDB write of the batch may be the one named: the documents or the duplicate window.
    assert.match(
      reason,
      /^partition 0 stalled for \d+ s at offsets \d+-\d+: (the mongodb sink|saving the duplicate window to MongoDB) keeps failing/,
    )
    assert.notInclude(reason, outage.uri, "the reason never shows the connection string")
    assert.notInclude(JSON.stringify(lastReady), outage.uri)

    const text = await metrics()
    assert.strictEqual(sample(text, "pipeline_partition_stalled", 'partition="0"'), 1, text)
    assert.strictEqual(sample(text, "pipeline_stalled"), 1)
    assert.isAtLeast(sample(text, "pipeline_partition_oldest_batch_age_seconds", 'partition="0"') ?? 0, 1)

    const warnings = logLines(service).filter((l) => l.message.startsWith("stalled:"))
    assert.isAbove(warnings.length, 0, service.output())
    timings.stallWarnings = warnings.length
    for (const line of warnings) {
      assert.strictEqual(line.level, "WARN")
      assert.strictEqual(line.annotations.partition, 0)
      assert.match(String(line.annotations.offsets), /^\d+-\d+$/)
      assert.isString(line.annotations.error)
      assert.notInclude(JSON.stringify(line), outage.uri)
    }

    // Still stalled a little later, and nothing committed all along.
    await sleep(3_000)
    committedSeen.add(await committedOffset(names.group, names.source))
    assert.deepStrictEqual([...committedSeen], [before.length], "no commit while MongoDB does not answer")
    assert.strictEqual(sample(await metrics(), "pipeline_partition_stalled", 'partition="0"'), 1)

    const back = Date.now()
    await outage.end()
    await waitFor(
      "the group to catch up",
      () => groupCaughtUp(names.group, names.source),
      60_000,
      service.output,
    )
    timings.caughtUp = Date.now() - back
    const valid = [...new Set(records.filter((r) => r.kind === "valid").map((r) => r.key!))].sort()
    assert.deepStrictEqual([...(await mongoIds(names.database, direct))].sort(), valid)
    await waitFor(
      "/readyz 200 again",
      async () => (await readyz()).status === 200,
      30_000,
      () => JSON.stringify(lastReady),
    )
    timings.ready200 = Date.now() - back
    assert.deepStrictEqual((await readyz()).body, { ready: true })
    const after = await metrics()
    assert.strictEqual(sample(after, "pipeline_partition_stalled", 'partition="0"'), 0, after)
    assert.strictEqual(sample(after, "pipeline_stalled"), 0)
    assert.strictEqual(await service.stop("SIGTERM"), 0, service.output())
    return timings
  } finally {
    await service.stop("SIGKILL")
  }
}

describe("stalls on a MongoDB that does not answer", () => {
  it("hung (a black hole): stalls, says so on /readyz, /metrics and the log, commits nothing, then catches up", async () => {
    const mongoPort = await freePort()
    const dir = mkdtempSync(join(tmpdir(), "stall-hung-"))
    const ferret = await startFerret(mongoPort, dir)
    const proxy = await startProxy(mongoPort)
    try {
      const timings = await stallAndRecover("stall-hung", 41, mongoPort, {
        uri: `mongodb://127.0.0.1:${proxy.port}/?directConnection=true`,
        begin: async () => proxy.blackHole(),
        end: async () => proxy.restore(),
      })
      console.info("hung MongoDB, ms from the black hole / from its end:", timings)
    } finally {
      await proxy.close()
      await stopProcess(ferret)
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it("stopped (SIGKILL, then started again on the same port and data): stalls, then catches up", async () => {
    const mongoPort = await freePort()
    const dir = mkdtempSync(join(tmpdir(), "stall-stopped-"))
    let ferret = await startFerret(mongoPort, dir)
    try {
      const timings = await stallAndRecover("stall-stopped", 43, mongoPort, {
        uri: `mongodb://127.0.0.1:${mongoPort}/?directConnection=true`,
        begin: () => killProcess(ferret),
        end: async () => {
          ferret = await startFerret(mongoPort, dir)
        },
      })
      console.info("stopped MongoDB, ms from the kill / from the restart:", timings)
    } finally {
      await stopProcess(ferret)
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
