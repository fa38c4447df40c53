/**
 * A metrics port another process holds stops the start with one ERROR line that names the port
 * and the setting, exit code 1, and no stack: the service against the real stack, with
 * METRICS__PORT set to a port this test holds (the test is about that setting).
 */
import { createServer } from "node:net"
import { assert, describe, it } from "@effect/vitest"
import { freePort } from "./support/Ferret.js"
import { freshNames, serviceEnv, startService } from "./support/Service.js"

describe("METRICS__PORT", () => {
  it("in use already: one line naming the port and the setting, exit 1", { timeout: 120_000 }, async () => {
    const port = await freePort()
    // Every interface, as the service binds by default.
    const holder = createServer()
    await new Promise<void>((done) => holder.listen(port, done))
    try {
      const service = startService(serviceEnv(freshNames("port"), { METRICS__PORT: String(port) }))
      const code = await service.exited
      const errors = service
        .output()
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as { level: string; message: unknown; cause?: string })
        .filter((l) => l.level === "ERROR")
      assert.strictEqual(code, 1, service.output())
      assert.deepStrictEqual(
        errors.map((e) => [e.message, e.cause]),
        [
          [
            `METRICS__PORT: cannot listen on port ${port}: it is in use already: stop what holds it, or choose another port (0 turns the HTTP server off)`,
            undefined,
          ],
        ],
      )
      assert.notInclude(service.output(), "ServeError")
    } finally {
      await new Promise((done) => holder.close(done))
    }
  })
})
