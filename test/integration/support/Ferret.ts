/**
 * A FerretDB instance of a test's own, on a free port, so that the test can stop and restart
 * MongoDB without disturbing the shared stack or other tests.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { createServer } from "node:net"
import { ferretBinary } from "../../../scripts/stack.js"
import { waitFor, withMongo } from "./Service.js"

export const freePort = () =>
  new Promise<number>((done) => {
    const server = createServer()
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() => done(typeof address === "object" && address !== null ? address.port : 0))
    })
  })

export const startFerret = async (port: number, dir: string): Promise<ChildProcess> => {
  const child = spawn(ferretBinary, ["-listen", `127.0.0.1:${port}`, "-data", dir], { stdio: "ignore" })
  await waitFor(
    `FerretDB on port ${port}`,
    () =>
      withMongo((c) => c.db("admin").command({ ping: 1 }), `mongodb://127.0.0.1:${port}/`).then(() => true),
    30_000,
  )
  return child
}

export const stopProcess = (child: ChildProcess) =>
  new Promise<void>((done) => {
    if (child.exitCode !== null || child.signalCode !== null) return done()
    child.once("exit", () => done())
    child.kill("SIGTERM")
  })
