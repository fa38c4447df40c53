/**
 * A TCP proxy that can hold what clients send: while holding, every byte a client writes is kept
 * (in order, per connection) instead of reaching the server; `release` delivers it all. A write
 * held this way reaches the server as late as the test decides, as a write of an instance that
 * stalled (or lost its partition) with a request in flight does.
 */
import { connect, createServer, type Socket } from "node:net"

export interface HoldingProxy {
  readonly port: number
  readonly hold: () => void
  /** Delivers everything held, in order, and passes bytes on as they come again. */
  readonly release: () => void
  /** Everything held so far, across connections. */
  readonly held: () => Buffer
  readonly close: () => Promise<void>
}

export const holdingProxy = async (target: {
  readonly host: string
  readonly port: number
}): Promise<HoldingProxy> => {
  let holding = false
  const held: Array<{ readonly upstream: Socket; readonly data: Buffer }> = []
  const sockets = new Set<Socket>()
  const server = createServer((client) => {
    const upstream = connect(target.port, target.host)
    sockets.add(client).add(upstream)
    client.on("data", (data: Buffer) => {
      if (holding) held.push({ upstream, data })
      else upstream.write(data)
    })
    upstream.on("data", (data: Buffer) => client.write(data))
    const end = () => {
      client.destroy()
      upstream.destroy()
      sockets.delete(client)
      sockets.delete(upstream)
    }
    for (const socket of [client, upstream]) {
      socket.on("error", end)
      socket.on("close", end)
    }
  })
  await new Promise<void>((ready) => server.listen(0, "127.0.0.1", ready))
  const address = server.address()
  if (address === null || typeof address === "string") throw new Error("the proxy has no TCP port")
  return {
    port: address.port,
    hold: () => {
      holding = true
    },
    release: () => {
      holding = false
      for (const { upstream, data } of held.splice(0)) if (!upstream.destroyed) upstream.write(data)
    },
    held: () => Buffer.concat(held.map((h) => h.data)),
    close: async () => {
      for (const socket of sockets) socket.destroy()
      await new Promise<void>((done) => server.close(() => done()))
    },
  }
}
