/**
 * The local stack: a single-node Apache Kafka broker (KRaft) and FerretDB (MongoDB wire
 * protocol, SQLite backend), both run as plain processes without Docker.
 *
 *   npm run stack -- up | down | status | logs [kafka|mongodb]
 *
 * Jars, the FerretDB build, data, pid files and logs all live under STACK_DIR (default
 * .stack/, git-ignored). `up` reuses whatever already answers on the ports, `down` stops only
 * the processes whose pid files it wrote.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process"
import { createHash } from "node:crypto"
import { existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { connect } from "node:net"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { Kafka, logLevel } from "kafkajs"
import { MongoClient } from "mongodb"
import { silenceKafkajsTimeoutWarning } from "../src/Kafka/NodeWarnings.js"

silenceKafkajsTimeoutWarning()

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..")
const env = process.env

export const settings = {
  dir: resolve(root, env.STACK_DIR ?? ".stack"),
  host: "127.0.0.1",
  kafkaPort: Number(env.STACK_KAFKA_PORT ?? 9092),
  controllerPort: Number(env.STACK_KAFKA_CONTROLLER_PORT ?? 9093),
  mongoPort: Number(env.STACK_MONGODB_PORT ?? 27017),
  kafkaHeap: env.STACK_KAFKA_HEAP ?? "512m",
  startTimeoutMs: Number(env.STACK_START_TIMEOUT_SECONDS ?? 120) * 1000,
}

class StackError extends Error {
  override readonly name = "StackError"
}

const paths = {
  lib: join(settings.dir, "kafka", "lib"),
  libStamp: join(settings.dir, "kafka", "lib.source-hash"),
  kafkaData: join(settings.dir, "kafka", "data"),
  kafkaProps: join(settings.dir, "kafka", "server.properties"),
  ferretBin: join(settings.dir, "bin", "ferretdb"),
  ferretStamp: join(settings.dir, "bin", "ferretdb.source-hash"),
  mongoData: join(settings.dir, "ferretdb", "data"),
  logs: join(settings.dir, "logs"),
  pids: join(settings.dir, "pids"),
}

/** The FerretDB binary `up` builds; tests start extra instances of it. */
export const ferretBinary = paths.ferretBin

type Service = "kafka" | "mongodb"
const pidFile = (s: Service) => join(paths.pids, `${s}.pid`)
const logFile = (s: Service) => join(paths.logs, `${s}.log`)

const say = (line: string) => process.stdout.write(`${line}\n`)
const elapsed = (start: number) => `${((Date.now() - start) / 1000).toFixed(1)}s`

// ---------------------------------------------------------------------------------------------
// Probes: is something listening, and is it the service we expect?

const portOpen = (port: number): Promise<boolean> =>
  new Promise((done) => {
    const socket = connect({ host: settings.host, port })
    socket.setTimeout(1000)
    socket.once("connect", () => {
      socket.destroy()
      done(true)
    })
    socket.once("timeout", () => {
      socket.destroy()
      done(false)
    })
    socket.once("error", () => done(false))
  })

const kafkaAnswers = async (): Promise<boolean> => {
  const admin = new Kafka({
    brokers: [`${settings.host}:${settings.kafkaPort}`],
    logLevel: logLevel.NOTHING,
    connectionTimeout: 2000,
    requestTimeout: 3000,
    retry: { retries: 0 },
  }).admin()
  try {
    await admin.connect()
    await admin.listTopics()
    return true
  } catch {
    return false
  } finally {
    await admin.disconnect().catch(() => undefined)
  }
}

const mongoAnswers = async (): Promise<string | undefined> => {
  const client = new MongoClient(`mongodb://${settings.host}:${settings.mongoPort}/`, {
    serverSelectionTimeoutMS: 2000,
    connectTimeoutMS: 2000,
  })
  try {
    await client.connect()
    await client.db("admin").command({ ping: 1 })
    const info = await client.db("admin").command({ buildInfo: 1 })
    // The embedded FerretDB build reports "unknown" as its own version; the module pins it.
    return "ferretdbVersion" in info
      ? `FerretDB ${ferretVersion()} (MongoDB ${info.version})`
      : `MongoDB ${info.version}`
  } catch {
    return undefined
  } finally {
    await client.close().catch(() => undefined)
  }
}

const readPid = (s: Service): number | undefined => {
  if (!existsSync(pidFile(s))) return undefined
  const pid = Number(readFileSync(pidFile(s), "utf8").trim())
  return Number.isInteger(pid) && pid > 0 ? pid : undefined
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

const ourPid = (s: Service): number | undefined => {
  const pid = readPid(s)
  return pid !== undefined && alive(pid) ? pid : undefined
}

// ---------------------------------------------------------------------------------------------
// Prerequisites: the Kafka jars from Maven Central and the FerretDB build from the Go proxy.

const requireTool = (tool: string, args: string[], purpose: string) => {
  const r = spawnSync(tool, args, { encoding: "utf8" })
  if (r.error !== undefined || r.status !== 0) {
    throw new StackError(
      `${tool} is needed ${purpose} but was not found on PATH. Install it, or point the service at an ` +
        "existing broker/server with KAFKA__BOOTSTRAP_SERVERS and MONGODB__CONNECTION_STRING instead of the local stack.",
    )
  }
}

export const kafkaVersion = (): string | undefined => {
  if (!existsSync(paths.lib)) return undefined
  const jar = readdirSync(paths.lib).find((f) => /^kafka_2\.13-[\d.]+\.jar$/.test(f))
  return jar?.replace(/^kafka_2\.13-/, "").replace(/\.jar$/, "")
}

const sourceHash = (dir: string, files: ReadonlyArray<string>): string => {
  const h = createHash("sha256")
  for (const f of files) h.update(readFileSync(join(dir, f)))
  return h.digest("hex")
}

/** A build output is current when the hash of its sources matches the stamp written beside it. */
const isCurrent = (stamp: string, hash: string) => existsSync(stamp) && readFileSync(stamp, "utf8") === hash

const ferretVersion = (): string =>
  /FerretDB\/FerretDB (v[\d.]+)/.exec(readFileSync(join(root, "stack", "ferretdb", "go.mod"), "utf8"))?.[1] ??
  "1.24"

const ensureKafkaJars = () => {
  const pom = join(root, "stack", "kafka", "pom.xml")
  const wanted = /<kafka.version>([^<]+)</.exec(readFileSync(pom, "utf8"))?.[1]
  const hash = sourceHash(dirname(pom), ["pom.xml"])
  if (isCurrent(paths.libStamp, hash)) return
  requireTool("java", ["-version"], "to run the Kafka broker (Java 17 or newer)")
  requireTool("mvn", ["-v"], "to fetch the Kafka jars from Maven Central")
  const start = Date.now()
  say(`kafka: fetching Apache Kafka ${wanted} jars with Maven ...`)
  rmSync(paths.lib, { recursive: true, force: true })
  const r = spawnSync(
    "mvn",
    [
      "-B",
      "-q",
      "-f",
      pom,
      "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies",
      `-DoutputDirectory=${paths.lib}`,
      "-DincludeScope=runtime",
    ],
    { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] },
  )
  if (r.status !== 0) {
    throw new StackError(
      `Maven could not fetch the Kafka jars (exit ${r.status}). Is Maven Central reachable?\n${r.stdout}${r.stderr}`,
    )
  }
  writeFileSync(paths.libStamp, hash)
  say(`kafka: jars ready in ${elapsed(start)}`)
}

const ensureFerretBinary = () => {
  const hash = sourceHash(join(root, "stack", "ferretdb"), ["go.mod", "go.sum", "main.go"])
  if (existsSync(paths.ferretBin) && isCurrent(paths.ferretStamp, hash)) return
  requireTool("go", ["version"], "to build FerretDB (Go 1.24 or newer)")
  const start = Date.now()
  say("mongodb: building FerretDB 1.24 (first time on this machine takes a minute or two) ...")
  const r = spawnSync("go", ["build", "-tags", "ferretdb_no_postgresql", "-o", paths.ferretBin, "."], {
    cwd: join(root, "stack", "ferretdb"),
    encoding: "utf8",
    env: { ...process.env, CGO_ENABLED: "0" },
    stdio: ["ignore", "pipe", "pipe"],
  })
  if (r.status !== 0) {
    throw new StackError(
      `go build of FerretDB failed (exit ${r.status}). Is the Go module proxy reachable?\n${r.stdout}${r.stderr}`,
    )
  }
  writeFileSync(paths.ferretStamp, hash)
  say(`mongodb: FerretDB built in ${elapsed(start)}`)
}

// ---------------------------------------------------------------------------------------------
// Starting and stopping

const serverProperties = () =>
  [
    "process.roles=broker,controller",
    "node.id=1",
    `controller.quorum.voters=1@${settings.host}:${settings.controllerPort}`,
    `listeners=PLAINTEXT://${settings.host}:${settings.kafkaPort},CONTROLLER://${settings.host}:${settings.controllerPort}`,
    `advertised.listeners=PLAINTEXT://${settings.host}:${settings.kafkaPort}`,
    "controller.listener.names=CONTROLLER",
    "inter.broker.listener.name=PLAINTEXT",
    "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
    `log.dirs=${paths.kafkaData}`,
    "num.partitions=3",
    "offsets.topic.replication.factor=1",
    "offsets.topic.num.partitions=1",
    "transaction.state.log.replication.factor=1",
    "transaction.state.log.min.isr=1",
    "transaction.state.log.num.partitions=1",
    "share.coordinator.state.topic.replication.factor=1",
    "share.coordinator.state.topic.min.isr=1",
    "group.initial.rebalance.delay.ms=0",
    "auto.create.topics.enable=true",
    "message.max.bytes=2097152",
    "",
  ].join("\n")

const java = (args: string[]) => [
  "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
  "-Dorg.slf4j.simpleLogger.log.kafka.server.KafkaRaftServer=info",
  "-Dorg.slf4j.simpleLogger.showDateTime=true",
  "-cp",
  `${paths.lib}/*`,
  ...args,
]

const formatKafkaStorage = () => {
  writeFileSync(paths.kafkaProps, serverProperties())
  if (existsSync(join(paths.kafkaData, "meta.properties"))) return
  mkdirSync(paths.kafkaData, { recursive: true })
  const id = execFileSync("java", java(["kafka.tools.StorageTool", "random-uuid"]), {
    encoding: "utf8",
  }).trim()
  const r = spawnSync(
    "java",
    java(["kafka.tools.StorageTool", "format", "-t", id, "-c", paths.kafkaProps, "--ignore-formatted"]),
    { encoding: "utf8" },
  )
  if (r.status !== 0) throw new StackError(`formatting the Kafka storage failed:\n${r.stdout}${r.stderr}`)
}

const launch = (s: Service, command: string, args: string[]): ChildProcess => {
  const out = openSync(logFile(s), "a")
  const child = spawn(command, args, { detached: true, stdio: ["ignore", out, out] })
  child.unref()
  if (child.pid === undefined) throw new StackError(`could not start ${s}: ${command} did not spawn`)
  writeFileSync(pidFile(s), String(child.pid))
  return child
}

const waitUntil = async (s: Service, ready: () => Promise<boolean>, child: ChildProcess | undefined) => {
  const deadline = Date.now() + settings.startTimeoutMs
  let exited: number | null = null
  child?.once("exit", (code) => {
    exited = code ?? -1
  })
  while (Date.now() < deadline) {
    if (await ready()) return
    if (exited !== null) {
      throw new StackError(`${s} exited with code ${exited} while starting; see ${logFile(s)}`)
    }
    await new Promise((r) => setTimeout(r, 250))
  }
  throw new StackError(
    `${s} did not become ready within ${settings.startTimeoutMs / 1000}s; see ${logFile(s)}`,
  )
}

type UpResult = { readonly service: Service; readonly started: boolean; readonly detail: string }

const upKafka = async (): Promise<UpResult> => {
  const address = `${settings.host}:${settings.kafkaPort}`
  if (await kafkaAnswers()) {
    return { service: "kafka", started: false, detail: `reusing the Kafka broker already on ${address}` }
  }
  if (await portOpen(settings.kafkaPort)) {
    throw new StackError(
      `port ${settings.kafkaPort} is taken by a process that is not a Kafka broker; stop it or set STACK_KAFKA_PORT`,
    )
  }
  if (await portOpen(settings.controllerPort)) {
    throw new StackError(
      `port ${settings.controllerPort} (Kafka controller) is taken by another process; stop it or set STACK_KAFKA_CONTROLLER_PORT`,
    )
  }
  ensureKafkaJars()
  formatKafkaStorage()
  const start = Date.now()
  const child = launch("kafka", "java", [
    `-Xms${settings.kafkaHeap}`,
    `-Xmx${settings.kafkaHeap}`,
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-Djava.awt.headless=true",
    ...java(["kafka.Kafka", paths.kafkaProps]),
  ])
  await waitUntil("kafka", kafkaAnswers, child)
  return {
    service: "kafka",
    started: true,
    detail: `started Apache Kafka ${kafkaVersion()} on ${address} (pid ${child.pid}) in ${elapsed(start)}`,
  }
}

const upMongo = async (): Promise<UpResult> => {
  const address = `${settings.host}:${settings.mongoPort}`
  const existing = await mongoAnswers()
  if (existing !== undefined) {
    return { service: "mongodb", started: false, detail: `reusing ${existing} already on ${address}` }
  }
  if (await portOpen(settings.mongoPort)) {
    throw new StackError(
      `port ${settings.mongoPort} is taken by a process that does not speak MongoDB; stop it or set STACK_MONGODB_PORT`,
    )
  }
  ensureFerretBinary()
  mkdirSync(paths.mongoData, { recursive: true })
  const start = Date.now()
  const child = launch("mongodb", paths.ferretBin, ["-listen", address, "-data", paths.mongoData])
  await waitUntil("mongodb", async () => (await mongoAnswers()) !== undefined, child)
  return {
    service: "mongodb",
    started: true,
    detail: `started ${await mongoAnswers()} on ${address} (pid ${child.pid}) in ${elapsed(start)}`,
  }
}

export const up = async (): Promise<ReadonlyArray<UpResult>> => {
  for (const d of [paths.logs, paths.pids, join(settings.dir, "bin")]) mkdirSync(d, { recursive: true })
  // Fetch and build first, one after the other: the builds block this process, and no
  // service's start-up clock may run while they do.
  const [kafkaUp, mongoUp] = await Promise.all([kafkaAnswers(), mongoAnswers()])
  if (!kafkaUp) ensureKafkaJars()
  if (mongoUp === undefined) ensureFerretBinary()
  const results = await Promise.all([upKafka(), upMongo()])
  for (const r of results) say(`${r.service}: ${r.detail}`)
  return results
}

const stop = async (s: Service): Promise<string> => {
  const pid = ourPid(s)
  if (pid === undefined) {
    rmSync(pidFile(s), { force: true })
    return `${s}: not running (no process started by this stack)`
  }
  process.kill(pid, "SIGTERM")
  const deadline = Date.now() + 30_000
  while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200))
  if (alive(pid)) process.kill(pid, "SIGKILL")
  rmSync(pidFile(s), { force: true })
  return `${s}: stopped (pid ${pid})`
}

export const down = async (services: ReadonlyArray<Service> = ["kafka", "mongodb"]) => {
  for (const line of await Promise.all(services.map(stop))) say(line)
}

const status = async () => {
  const [kafka, mongo] = await Promise.all([kafkaAnswers(), mongoAnswers()])
  const owner = (s: Service) => {
    const pid = ourPid(s)
    return pid === undefined ? "not started by this stack" : `pid ${pid}`
  }
  say(
    `kafka:   ${kafka ? "up" : "down"}  Apache Kafka ${kafkaVersion() ?? "(jars not fetched)"}  ${settings.host}:${settings.kafkaPort}  ${owner("kafka")}`,
  )
  say(
    `mongodb: ${mongo !== undefined ? "up" : "down"}  ${mongo ?? "FerretDB 1.24"}  ${settings.host}:${settings.mongoPort}  ${owner("mongodb")}`,
  )
  return kafka && mongo !== undefined
}

const logs = (which: ReadonlyArray<Service>) => {
  for (const s of which) {
    say(`==> ${logFile(s)} <==`)
    if (existsSync(logFile(s))) say(readFileSync(logFile(s), "utf8").split("\n").slice(-60).join("\n"))
  }
}

const usage = "usage: npm run stack -- up | down | status | logs [kafka|mongodb]"

const main = async (argv: ReadonlyArray<string>) => {
  const [command, ...rest] = argv
  const which = rest.filter((s): s is Service => s === "kafka" || s === "mongodb")
  switch (command) {
    case "up":
      await up()
      return 0
    case "down":
      await down(which.length > 0 ? which : undefined)
      return 0
    case "status":
      return (await status()) ? 0 : 1
    case "logs":
      logs(which.length > 0 ? which : ["kafka", "mongodb"])
      return 0
    default:
      process.stderr.write(`${usage}\n`)
      return 2
  }
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
      process.stderr.write(`stack: ${e instanceof StackError ? e.message : String(e)}\n`)
      process.exit(1)
    },
  )
}
