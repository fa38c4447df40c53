/**
 * The pipeline service as the benchmark runs it: compiled from the working tree into the
 * run's directory (the shared dist/ is left alone), started as `node main.js` with every
 * setting in its environment (no .env), ready once /readyz says the consumer is in its group.
 */
import { spawnSync } from "node:child_process"
import { existsSync } from "node:fs"
import { createServer } from "node:net"
import { join } from "node:path"
import { Child } from "./Child.js"
import { brokers, mongoUri, root } from "./Infra.js"

/** Compiles src/ with the project's build settings into `dir`; returns the entry point. */
export const buildService = (dir: string): string => {
  const tsc = join(root, "node_modules", ".bin", "tsc")
  const r = spawnSync(tsc, ["-p", join(root, "tsconfig.build.json"), "--outDir", dir], {
    cwd: root,
    encoding: "utf8",
  })
  const main = join(dir, "main.js")
  if (r.status !== 0 || !existsSync(main)) {
    throw new Error(`building the service failed (tsc exit ${r.status}):\n${r.stdout}${r.stderr}`)
  }
  return main
}

export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })

export interface ServiceSettings {
  readonly source: string
  readonly sink: string
  readonly dlq: string
  readonly group: string
  readonly database: string
  readonly collection: string
  readonly batchSize: number
}

/** The defaults of .env.example, spelled out so that the run records what it measured. */
export const serviceEnv = (s: ServiceSettings, metricsPort: number): Record<string, string> => ({
  ENV_FILE: "/dev/null",
  KAFKA__BOOTSTRAP_SERVERS: brokers.join(","),
  KAFKA__TOPIC_SOURCE: s.source,
  KAFKA__TOPIC_SINK: s.sink,
  KAFKA__TOPIC_DLQ: s.dlq,
  KAFKA__CONSUMER_GROUP: s.group,
  KAFKA__AUTO_OFFSET_RESET: "earliest",
  KAFKA__CLIENT_ID: "bench-pipeline",
  KAFKA__CREATE_TOPICS: "true",
  MONGODB__CONNECTION_STRING: mongoUri,
  MONGODB__DATABASE: s.database,
  MONGODB__COLLECTION: s.collection,
  PIPELINE__FILE: join(root, "config", "pipeline.yaml"),
  PIPELINE__BATCH_SIZE: String(s.batchSize),
  PIPELINE__MAX_WORKERS: "10",
  PIPELINE__PARTITIONS_CONCURRENCY: "3",
  PIPELINE__RETRY_COUNT: "3",
  PIPELINE__RETRY_DELAY_SECONDS: "5",
  LOGGING__LEVEL: "INFO",
  LOGGING__FORMAT: "json",
  METRICS__PORT: String(metricsPort),
  METRICS__PROGRESS_INTERVAL_SECONDS: "5",
})

export interface Started {
  readonly child: Child
  readonly port: number
  /** performance.now() when /readyz first answered 200. */
  readonly readyAt: number
  readonly startupSeconds: number
}

export interface StartOptions {
  readonly main: string
  readonly settings: ServiceSettings
  readonly logFile: string
  /** Modules preloaded with --import (the latency probe). */
  readonly imports?: ReadonlyArray<string>
  readonly extraEnv?: Readonly<Record<string, string>>
  readonly nodeFlags?: ReadonlyArray<string>
}

export const startService = async (o: StartOptions): Promise<Started> => {
  const port = await freePort()
  const args = [
    "--disable-warning=TimeoutNegativeWarning",
    ...(o.nodeFlags ?? []),
    ...(o.imports ?? []).flatMap((m) => ["--import", m]),
    o.main,
  ]
  const started = performance.now()
  const child = new Child("pipeline", args, { ...serviceEnv(o.settings, port), ...o.extraEnv }, o.logFile)
  const deadline = started + 120_000
  for (;;) {
    if (!child.running) throw new Error(`the pipeline exited while starting; see ${o.logFile}`)
    const ok = await fetch(`http://127.0.0.1:${port}/readyz`).then(
      (r) => r.status === 200,
      () => false,
    )
    if (ok) {
      const readyAt = performance.now()
      return { child, port, readyAt, startupSeconds: (readyAt - started) / 1000 }
    }
    if (performance.now() > deadline) {
      await child.stop(5_000)
      throw new Error(`the pipeline did not become ready within 120 s; see ${o.logFile}`)
    }
    await new Promise((r) => setTimeout(r, 50))
  }
}
