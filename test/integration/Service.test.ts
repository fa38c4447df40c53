/**
 * The service from the outside, against the real broker and FerretDB: every produced message
 * must end in MongoDB + the sink topic, the dead-letter topic, or the duplicate count, across
 * graceful restarts, crashes and malformed input.
 */
import { afterAll, assert, describe, it } from "@effect/vitest"
import { encode, type GeneratedRecord, generate, type RecordOptions } from "../../src/Generator/Records.js"
import {
  createTopic,
  dropDatabase,
  freshNames,
  groupCaughtUp,
  mongoIds,
  type Names,
  produce,
  type RunningService,
  readTopic,
  serviceEnv,
  startService,
  summaryOf,
  waitFor,
} from "./support/Service.js"

// Every test sets KAFKA__MAX_MESSAGE_BYTES to 10,000 (default 1 MiB): the generator's oversized
// records (20 KB here) must cross it to take the parse path as "oversized".
const oversizedLimit = { KAFKA__MAX_MESSAGE_BYTES: "10000" }

const options = (seed: number, extra: Partial<RecordOptions> = {}): RecordOptions => ({
  seed,
  pattern: "mixed",
  invalidRatio: 0.15,
  duplicateRatio: 0.08,
  malformedRatio: 0.03,
  oversizedRatio: 0.01,
  oversizedBytes: 20_000,
  baseTime: Date.UTC(2026, 10, 27),
  ...extra,
})

const keysOf = (records: ReadonlyArray<GeneratedRecord>, kind: GeneratedRecord["kind"]) =>
  new Set(records.filter((r) => r.kind === kind).map((r) => r.key!))

const indexesOf = (records: ReadonlyArray<GeneratedRecord>, kinds: ReadonlyArray<GeneratedRecord["kind"]>) =>
  new Set(records.filter((r) => kinds.includes(r.kind)).map((r) => String(r.index)))

const sorted = (values: Iterable<string>) => [...values].sort()

const databases: string[] = []
afterAll(async () => {
  for (const db of databases) await dropDatabase(db).catch(() => undefined)
})

const setup = async (prefix: string) => {
  const names = freshNames(prefix)
  databases.push(names.database)
  await createTopic(names.source, 3)
  return names
}

const untilFirstDocuments = (names: Names, service: RunningService) =>
  waitFor(
    "the first documents",
    async () => (await mongoIds(names.database).catch(() => [])).length > 0,
    60_000,
    service.output,
  )

const untilCaughtUp = (names: Names, service: RunningService) =>
  waitFor(
    "the group to commit every offset",
    () => groupCaughtUp(names.group, names.source),
    90_000,
    service.output,
  )

/** Everything that must be true once the group has committed every offset. */
const expectAccounted = async (names: Names, records: ReadonlyArray<GeneratedRecord>) => {
  const valid = keysOf(records, "valid")
  assert.deepStrictEqual(
    sorted(await mongoIds(names.database)),
    sorted(valid),
    "MongoDB holds exactly the valid keys",
  )
  const sink = await readTopic(names.sink)
  assert.deepStrictEqual(
    sorted(new Set(sink.map((m) => m.key!))),
    sorted(valid),
    "the sink topic has every valid key",
  )
  const dlq = await readTopic(names.dlq)
  const expectedDead = indexesOf(records, ["invalid", "malformed", "oversized"])
  assert.deepStrictEqual(
    sorted(new Set(dlq.map((m) => m.headers["x-index"]!))),
    sorted(expectedDead),
    "dead letters",
  )
  return { sink, dlq, valid, expectedDead }
}

describe("the service", () => {
  it("accounts for every message: valid to MongoDB and the sink topic, the rest to the dead-letter topic or the duplicate count", async () => {
    const names = await setup("e2e")
    const records = [...generate(options(11), 0, 1200)]
    await produce(names.source, records)
    const service = startService(serviceEnv(names, oversizedLimit))
    await untilCaughtUp(names, service)
    assert.strictEqual(await service.stop("SIGTERM"), 0, service.output())

    const { sink, dlq, valid, expectedDead } = await expectAccounted(names, records)
    // One run, no replay: nothing twice.
    assert.strictEqual(sink.length, valid.size)
    assert.strictEqual(dlq.length, expectedDead.size)

    const byIndex = new Map(records.map((r) => [String(r.index), r]))
    for (const m of dlq) {
      const original = byIndex.get(m.headers["x-index"]!)!
      assert.deepStrictEqual(m.value, encode(original), "the dead letter carries the original bytes")
      assert.strictEqual(m.headers["pipeline.source.topic"], names.source)
      assert.isDefined(m.headers["pipeline.source.offset"])
      const reasons = JSON.parse(m.headers["pipeline.error.reasons"]!) as Array<{
        task: string
        rule: string
      }>
      assert.isAbove(reasons.length, 0)
      const stage = m.headers["pipeline.error.stage"]
      if (original.kind === "malformed") assert.deepStrictEqual([stage, reasons[0]!.rule], ["parse", "json"])
      else if (original.kind === "oversized")
        assert.deepStrictEqual([stage, reasons[0]!.rule], ["parse", "oversized"])
      else
        assert.strictEqual(stage, "validation", `${original.defect}: ${m.headers["pipeline.error.message"]}`)
    }
    for (const m of sink) {
      const value = JSON.parse(m.value!.toString()) as { event_id: string; email: string }
      assert.strictEqual(value.event_id, m.key)
      assert.strictEqual(value.email, value.email.toLowerCase())
      assert.isDefined(m.headers["pipeline.correlation_id"])
    }

    const summary = summaryOf(service.output())!
    const duplicates = records.filter((r) => r.kind === "duplicate").length
    assert.isAbove(duplicates, 0)
    assert.strictEqual(summary.consumed, records.length)
    assert.strictEqual(summary.duplicates, duplicates)
    assert.strictEqual(summary.valid! + summary.deadLettered! + summary.duplicates!, records.length)
  })

  it("loses nothing and duplicates nothing in MongoDB across a SIGTERM mid-stream and a restart", async () => {
    const names = await setup("restart")
    const records = [...generate(options(12), 0, 3000)]
    await produce(names.source, records.slice(0, 2000))
    const env = serviceEnv(names, oversizedLimit)
    const first = startService(env)
    await untilFirstDocuments(names, first)
    assert.strictEqual(await first.stop("SIGTERM"), 0, first.output())
    assert.include(first.output(), "pipeline stopped")

    await produce(names.source, records.slice(2000))
    const second = startService(env)
    await untilCaughtUp(names, second)
    assert.strictEqual(await second.stop("SIGTERM"), 0, second.output())

    const { dlq, expectedDead } = await expectAccounted(names, records)
    // A graceful stop commits exactly what was written: nothing is read twice.
    assert.strictEqual(dlq.length, expectedDead.size)
    const consumed = (summaryOf(first.output())?.consumed ?? 0) + (summaryOf(second.output())?.consumed ?? 0)
    assert.strictEqual(consumed, records.length)
  })

  it("replays the batch after a SIGKILL and still has no duplicates in MongoDB", async () => {
    const names = await setup("crash")
    const records = [...generate(options(13), 0, 3000)]
    await produce(names.source, records)
    const env = serviceEnv(names, {
      ...oversizedLimit,
      // The killed member leaves no goodbye: the group notices it after the session timeout.
      KAFKA__SESSION_TIMEOUT_SECONDS: "6",
    })
    const first = startService(env)
    await untilFirstDocuments(names, first)
    await first.stop("SIGKILL")

    const second = startService(env)
    // Running before the catch-up counts: the first may have committed everything already.
    await waitFor(
      "the second instance to run",
      async () => second.output().includes("pipeline running"),
      60_000,
      second.output,
    )
    await untilCaughtUp(names, second)
    assert.strictEqual(await second.stop("SIGTERM"), 0, second.output())
    // Replayed batches may repeat dead letters and sink messages, never MongoDB documents.
    await expectAccounted(names, records)
  })

  it("shares the partitions between two instances of one group, and loses nothing when one leaves mid-stream", async () => {
    const names = await setup("scale")
    const records = [...generate(options(14), 0, 3000)]
    const env = serviceEnv(names, oversizedLimit)
    const a = startService(env)
    const b = startService(env)
    for (const s of [a, b])
      await waitFor(
        "the instance to run",
        async () => s.output().includes("pipeline running"),
        60_000,
        s.output,
      )
    await produce(names.source, records.slice(0, 1500))
    await untilFirstDocuments(names, a)
    // One instance leaves while the other keeps going: its partitions move over.
    assert.strictEqual(await b.stop("SIGTERM"), 0, b.output())
    await produce(names.source, records.slice(1500))
    await untilCaughtUp(names, a)
    assert.strictEqual(await a.stop("SIGTERM"), 0, a.output())

    await expectAccounted(names, records)
    const consumedA = summaryOf(a.output())?.consumed ?? 0
    const consumedB = summaryOf(b.output())?.consumed ?? 0
    assert.isAbove(consumedA, 0)
    // Nothing read twice: the leaving instance commits its batches in hand before it leaves, and
    // the staying one commits its own before it rejoins the rebalancing group.
    assert.strictEqual(consumedA + consumedB, records.length)
  })

  it("stops with exit code 2 and one message naming every bad setting, without printing secrets", async () => {
    const secret = "S3cret-Xyzzy-42"
    const service = startService({
      PATH: process.env.PATH ?? "",
      ENV_FILE: "/nonexistent/.env",
      KAFKA__BOOTSTRAP_SERVERS: "localhost",
      KAFKA__API_KEY: "key",
      KAFKA__API_SECRET: secret,
      MONGODB__CONNECTION_STRING: `http://admin:${secret}@db.example`,
      PIPELINE__BATCH_SIZE: "lots",
    })
    assert.strictEqual(await service.exited, 2)
    const output = service.output()
    assert.notInclude(output, secret)
    for (const name of [
      "KAFKA__BOOTSTRAP_SERVERS",
      "KAFKA__TOPIC_SOURCE",
      "KAFKA__TOPIC_SINK",
      "KAFKA__CONSUMER_GROUP",
      "MONGODB__CONNECTION_STRING",
      "MONGODB__DATABASE",
      "MONGODB__COLLECTION",
      "PIPELINE__BATCH_SIZE",
    ]) {
      assert.include(output, name)
    }
    assert.strictEqual(output.match(/invalid configuration/g)?.length, 1, output)
  })

  it("stops with exit code 2 and the file's problems when the pipeline definition is broken", async () => {
    const names = freshNames("badspec")
    const service = startService(
      serviceEnv(names, { PIPELINE__FILE: "test/fixtures/pipelines/broken/unknown-dependency.yaml" }),
    )
    assert.strictEqual(await service.exited, 2)
    assert.include(service.output(), "unknown task")
  })
})
