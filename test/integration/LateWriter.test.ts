/**
 * A late writer cannot roll MongoDB back (monotonic writes). Instance A takes a record of key K
 * from offset 1 and sends its MongoDB write, which a proxy holds; A is then stopped (SIGSTOP)
 * past its session timeout, so the group gives the partition to instance B, which writes K from
 * offset 1 and then K's newer version from offset 2. Only then does A's write reach MongoDB and A
 * run again: MongoDB keeps the newer version, and A counts its write as stale
 * (`pipeline_mongodb_stale_writes_total`). With replaces that do not look at the stored
 * position, A's write would put the older version back.
 */
import { readFile, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, assert, describe, it } from "@effect/vitest"
import type { JsonObject } from "../../src/Domain/Record.js"
import { defaultRecordOptions, type GeneratedRecord, generate } from "../../src/Generator/Records.js"
import { freePort } from "./support/Ferret.js"
import { holdingProxy } from "./support/HoldingProxy.js"
import {
  createTopic,
  dropDatabase,
  freshNames,
  produce,
  root,
  serviceEnv,
  startService,
  waitFor,
  withMongo,
} from "./support/Service.js"
import { mongoUri } from "./support/Stack.js"

const databases: string[] = []
afterAll(async () => {
  for (const db of databases) await dropDatabase(db).catch(() => undefined)
})

const storedOf = (database: string, key: string) =>
  withMongo((client) => client.db(database).collection<{ _id: string }>("orders").findOne({ _id: key }))

/** A counter of the service's /metrics, summed over its labels. */
const counter = async (port: number, name: string): Promise<number> => {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()
  return text
    .split("\n")
    .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
    .reduce((sum, l) => sum + Number(l.split(" ").pop()), 0)
}

describe("monotonic MongoDB writes", () => {
  it("a late writer's older version of a key arrives after the newer one: MongoDB keeps the newer", async () => {
    const names = freshNames("late")
    databases.push(names.database)
    await createTopic(names.source, 1)
    // The shipped pipeline with the duplicate check's action `keep` instead of `remove`: a key's
    // second version within the window would otherwise be removed as a duplicate, and this test
    // is about a newer version of a key reaching MongoDB.
    const pipelineFile = join(tmpdir(), `${names.source}.yaml`)
    const shipped = await readFile(join(root, "config/pipeline.yaml"), "utf8")
    assert.include(shipped, "action: remove")
    await writeFile(pipelineFile, shipped.replace("action: remove", "action: keep"))

    const [warmup, first] = [...generate({ ...defaultRecordOptions, seed: 77, pattern: "valid" }, 0, 2)]
    const key = first!.key!
    const version = (record: GeneratedRecord, amount: number): GeneratedRecord => {
      const value = structuredClone(record.value) as JsonObject
      ;(value.order as JsonObject).amount = amount
      return { ...record, value }
    }

    const target = new URL(mongoUri)
    const proxy = await holdingProxy({ host: target.hostname, port: Number(target.port) })
    const metricsA = await freePort()
    const a = startService(
      serviceEnv(names, {
        PIPELINE__FILE: pipelineFile,
        MONGODB__CONNECTION_STRING: `mongodb://127.0.0.1:${proxy.port}/?directConnection=true`,
        // A's metrics: the stale write is counted there.
        METRICS__PORT: String(metricsA),
        // The shortest session timeout allowed, so that the group gives A up after 6 s rather than
        // 30: what hands the partition to B is not what this test is about.
        KAFKA__SESSION_TIMEOUT_SECONDS: "6",
      }),
    )
    let b: ReturnType<typeof startService> | undefined
    try {
      // A owns the partition and has written a record: assigned, connected, its window read.
      await produce(names.source, [warmup!])
      await waitFor(
        "A to write the first record",
        async () => (await storedOf(names.database, warmup!.key!)) !== null,
        60_000,
        a.output,
      )

      proxy.hold()
      await produce(names.source, [version(first!, 1)])
      await waitFor(
        "A's MongoDB write of offset 1 to be held",
        async () => proxy.held().includes(Buffer.from(`${key}`)),
        30_000,
        a.output,
      )
      a.child.kill("SIGSTOP")

      // B takes the partition once the group has given A up (A's session timeout).
      b = startService(serviceEnv(names, { PIPELINE__FILE: pipelineFile }))
      await waitFor(
        "B to write offset 1",
        async () =>
          ((await storedOf(names.database, key)) as { _kafka?: { offset: number } } | null)?._kafka
            ?.offset === 1,
        120_000,
        () => `${b?.output()}`,
      )
      await produce(names.source, [version(first!, 2)])
      await waitFor(
        "B to write the newer version, from offset 2",
        async () =>
          ((await storedOf(names.database, key)) as { _kafka?: { offset: number } } | null)?._kafka
            ?.offset === 2,
        60_000,
        () => `${b?.output()}`,
      )

      // A's held write reaches MongoDB now, and A runs again.
      proxy.release()
      a.child.kill("SIGCONT")
      await waitFor(
        "A to have written its batch to MongoDB",
        // Two records (the first and K), each written by both sinks.
        async () => (await counter(metricsA, "pipeline_records_written_total")) >= 4,
        90_000,
        a.output,
      )
      const stored = (await storedOf(names.database, key)) as {
        order?: unknown
        amount?: number
        _kafka?: { topic: string; partition: number; offset: number }
      } | null
      assert.strictEqual(stored?.amount, 2, "MongoDB keeps the newer version")
      assert.deepStrictEqual(stored?._kafka, { topic: names.source, partition: 0, offset: 2 })
      assert.strictEqual(
        await counter(metricsA, "pipeline_mongodb_stale_writes_total"),
        1,
        "A counted its write as stale",
      )
    } finally {
      a.child.kill("SIGCONT")
      await Promise.all([a.stop(), b?.stop()])
      await proxy.close()
    }
  })
})
