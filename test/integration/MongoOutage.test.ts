import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { generate } from "../../src/Generator/Records.js"
import { freePort, startFerret, stopProcess } from "./support/Ferret.js"
import {
  createTopic,
  freshNames,
  groupCaughtUp,
  mongoIds,
  produce,
  serviceEnv,
  startService,
  waitFor,
} from "./support/Service.js"

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
        // The test is about the stall and the catch-up: backoff of 0.2 s to 1 s (default 5 s to 60 s)
        // so that the service notices the server's return within seconds, not a minute.
        PIPELINE__RETRY_DELAY_SECONDS: "0.2",
        PIPELINE__MAX_RETRY_DELAY_SECONDS: "1",
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
