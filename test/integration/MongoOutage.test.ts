/**
 * MongoDB goes away while records keep arriving: the service stalls (no commit, no skipping),
 * says so, reports not ready, and catches up with nothing lost once MongoDB is back. The test
 * runs its own FerretDB instance so that it can stop it without disturbing other tests.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { ferretBinary } from "../../scripts/stack.js"
import { generate } from "../../src/Generator/Records.js"
import {
  createTopic,
  freshNames,
  groupCaughtUp,
  mongoIds,
  produce,
  serviceEnv,
  startService,
  waitFor,
  withMongo,
} from "./support/Service.js"

const freePort = () =>
  new Promise<number>((done) => {
    const server = createServer()
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() => done(typeof address === "object" && address !== null ? address.port : 0))
    })
  })

const startFerret = async (port: number, dir: string): Promise<ChildProcess> => {
  const child = spawn(ferretBinary, ["-listen", `127.0.0.1:${port}`, "-data", dir], { stdio: "ignore" })
  await waitFor(
    `FerretDB on port ${port}`,
    () =>
      withMongo((c) => c.db("admin").command({ ping: 1 }), `mongodb://127.0.0.1:${port}/`).then(
        () => true,
        () => false,
      ),
    30_000,
  )
  return child
}

const stopProcess = (child: ChildProcess) =>
  new Promise<void>((done) => {
    if (child.exitCode !== null) return done()
    child.once("exit", () => done())
    child.kill("SIGTERM")
  })

const readyz = (port: number) =>
  fetch(`http://127.0.0.1:${port}/readyz`).then(
    async (r) => ({ status: r.status, body: await r.text() }),
    () => ({ status: 0, body: "" }),
  )

describe("MongoDB outage", () => {
  it("stalls without committing while MongoDB is down and catches up with nothing lost when it returns", async () => {
    const mongoPort = await freePort()
    const metricsPort = await freePort()
    const dir = mkdtempSync(join(tmpdir(), "ferret-outage-"))
    const uri = `mongodb://127.0.0.1:${mongoPort}/`
    let ferret = await startFerret(mongoPort, dir)
    const names = freshNames("outage")
    await createTopic(names.source, 3)
    const records = [
      ...generate(
        {
          seed: 21,
          pattern: "mixed",
          invalidRatio: 0.1,
          duplicateRatio: 0.05,
          malformedRatio: 0,
          oversizedRatio: 0,
          oversizedBytes: 0,
          baseTime: Date.UTC(2026, 10, 27),
        },
        0,
        600,
      ),
    ]
    const service = startService(
      serviceEnv(names, {
        MONGODB__CONNECTION_STRING: `${uri}?serverSelectionTimeoutMS=1000`,
        METRICS__PORT: String(metricsPort),
      }),
    )
    try {
      await produce(names.source, records.slice(0, 300))
      await waitFor("the first half", () => groupCaughtUp(names.group, names.source), 60_000, service.output)
      await waitFor("ready", async () => (await readyz(metricsPort)).status === 200, 30_000)

      await stopProcess(ferret)
      await produce(names.source, records.slice(300))
      await waitFor(
        "the stall to be logged",
        async () => service.output().includes("stalled"),
        60_000,
        service.output,
      )
      assert.isFalse(await groupCaughtUp(names.group, names.source), "no commit while MongoDB is down")
      const notReady = await readyz(metricsPort)
      assert.strictEqual(notReady.status, 503)
      assert.include(notReady.body, "MongoDB")

      ferret = await startFerret(mongoPort, dir)
      await waitFor("the second half", () => groupCaughtUp(names.group, names.source), 90_000, service.output)
      const valid = records.filter((r) => r.kind === "valid").map((r) => r.key!)
      assert.deepStrictEqual([...(await mongoIds(names.database, uri))].sort(), [...new Set(valid)].sort())
      assert.strictEqual(await service.stop("SIGTERM"), 0, service.output())
    } finally {
      await service.stop("SIGKILL")
      await stopProcess(ferret)
    }
  })
})
