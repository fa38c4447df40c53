/**
 * The local stack: a single-node Apache Kafka broker (KRaft) and FerretDB (MongoDB wire
 * protocol, SQLite backend), both run as plain processes without Docker.
 *
 *   npm run stack -- up [kafka|mongodb] | down [kafka|mongodb] | restart kafka|mongodb
 *                  | kill kafka|mongodb | status | logs [kafka|mongodb]
 *
 * Jars, the FerretDB build, the broker's throw-away TLS certificates, data, pid files and logs
 * all live under STACK_DIR (default .stack/, git-ignored). `up` reuses whatever already answers
 * on the ports; `down`, `restart` and `kill` touch only the processes whose pid files it wrote.
 * The broker has a PLAINTEXT listener for everything, and a SASL_SSL (PLAIN) listener that
 * stands in for Confluent Cloud in the tests (`kafkaSasl`).
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process"
import { createHash, randomBytes } from "node:crypto"
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs"
import { connect } from "node:net"
import { basename, dirname, join, resolve } from "node:path"
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
  kafkaSaslPort: Number(env.STACK_KAFKA_SASL_PORT ?? 9094),
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
  security: join(settings.dir, "kafka", "security"),
  ferretBin: join(settings.dir, "bin", "ferretdb"),
  ferretStamp: join(settings.dir, "bin", "ferretdb.source-hash"),
  ferretBuild: join(settings.dir, "ferretdb", "build"),
  mongoData: join(settings.dir, "ferretdb", "data"),
  logs: join(settings.dir, "logs"),
  pids: join(settings.dir, "pids"),
}

/** The FerretDB binary `up` builds; tests start extra instances of it. */
export const ferretBinary = paths.ferretBin

/**
 * The broker's SASL_SSL listener: SASL/PLAIN over TLS, as Confluent Cloud serves it. The
 * certificate is signed by a throw-away CA made at the first `up` (trust `caFile`, e.g. with
 * NODE_EXTRA_CA_CERTS); the password is made then too and kept under STACK_DIR.
 */
export const kafkaSasl = {
  port: settings.kafkaSaslPort,
  brokers: [`${settings.host}:${settings.kafkaSaslPort}`],
  caFile: join(paths.security, "ca.pem"),
  username: "pipeline",
  password: (): string => readFileSync(join(paths.security, "pipeline.password"), "utf8").trim(),
}

export type Service = "kafka" | "mongodb"
const services: ReadonlyArray<Service> = ["kafka", "mongodb"]
const pidFile = (s: Service) => join(paths.pids, `${s}.pid`)
const logFile = (s: Service) => join(paths.logs, `${s}.log`)
const address = (s: Service) => `${settings.host}:${s === "kafka" ? settings.kafkaPort : settings.mongoPort}`

const say = (line: string) => process.stdout.write(`${line}\n`)
const elapsed = (start: number) => `${((Date.now() - start) / 1000).toFixed(1)}s`
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

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
    brokers: [address("kafka")],
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

interface MongoProbe {
  readonly description: string
  /** For a FerretDB of this stack: the build it runs (`ferretBuild()` when it is current). */
  readonly build: string | undefined
}

const mongoAnswers = async (): Promise<MongoProbe | undefined> => {
  const client = new MongoClient(`mongodb://${address("mongodb")}/`, {
    serverSelectionTimeoutMS: 2000,
    connectTimeoutMS: 2000,
  })
  try {
    await client.connect()
    await client.db("admin").command({ ping: 1 })
    const info = await client.db("admin").command({ buildInfo: 1 })
    if (!("ferretdbVersion" in info)) return { description: `MongoDB ${info.version}`, build: undefined }
    // Builds of this stack report the FerretDB release and, as gitVersion, "stack-<build>".
    const release = info.ferretdbVersion === "unknown" ? ferretVersion() : String(info.ferretdbVersion)
    const build = /^stack-(.+)$/.exec(String(info.gitVersion))?.[1] ?? "unknown"
    return { description: `FerretDB ${release} (MongoDB ${info.version})`, build }
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

/** Running, and not a zombie (a killed child of this process that Node has not reaped yet). */
const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    return !["Z", "X"].includes(stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3))
  } catch {
    return true // no /proc (macOS): kill(0) has to do
  }
}

/** The pid file's process, if it still runs what the stack started there (pids get reused). */
const ourPid = (s: Service): number | undefined => {
  const pid = readPid(s)
  if (pid === undefined || !alive(pid)) return undefined
  let argv: ReadonlyArray<string>
  try {
    argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")
  } catch {
    return pid
  }
  return argv.includes(s === "kafka" ? paths.kafkaProps : paths.ferretBin) ? pid : undefined
}

const waitForExit = async (pid: number, timeoutMs: number) => {
  const deadline = Date.now() + timeoutMs
  while (alive(pid) && Date.now() < deadline) await sleep(100)
  return !alive(pid)
}

// ---------------------------------------------------------------------------------------------
// Prerequisites: the Kafka jars from Maven Central, the broker's certificates, and the FerretDB
// build from the Go proxy.

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

/** Readable and writable by the owner only: directories 0700, files 0600, all the way down. */
const makePrivate = (dir: string) => {
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  chmodSync(dir, 0o700)
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true }))
    chmodSync(join(entry.parentPath, entry.name), entry.isDirectory() ? 0o700 : 0o600)
}

const security = {
  keystore: join(paths.security, "broker.p12"),
  keystorePassword: join(paths.security, "keystore.password"),
  userPassword: join(paths.security, "pipeline.password"),
}

/**
 * A throw-away CA, the broker's certificate for 127.0.0.1 and localhost signed by it (in a
 * PKCS12 keystore), and the passwords: made once per STACK_DIR with keytool, which comes with
 * the Java the broker needs anyway. The CA's key is deleted once the broker's certificate is
 * signed.
 */
export const ensureKafkaSecurity = () => {
  if ([kafkaSasl.caFile, ...Object.values(security)].every((f) => existsSync(f))) {
    makePrivate(paths.security) // made by an older stack, perhaps
    return
  }
  requireTool(
    "keytool",
    ["-help"],
    "to make the certificates of the broker's SASL_SSL listener (it comes with Java)",
  )
  const start = Date.now()
  const dir = `${paths.security}.tmp`
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  // keytool reads the password from its file, never from its command line (which `ps` shows).
  const storePasswordFile = join(dir, basename(security.keystorePassword))
  writeFileSync(storePasswordFile, randomBytes(16).toString("hex"), { mode: 0o600 })
  const ca = join(dir, "ca.p12")
  const broker = join(dir, basename(security.keystore))
  const keytool = (store: string, args: ReadonlyArray<string>) => {
    const r = spawnSync(
      "keytool",
      [
        "-J-XX:TieredStopAtLevel=1",
        "-J-XX:+UseSerialGC",
        ...args,
        "-keystore",
        store,
        "-storetype",
        "PKCS12",
        "-storepass:file",
        storePasswordFile,
      ],
      { encoding: "utf8" },
    )
    if (r.status !== 0)
      throw new StackError(`keytool ${args[0]} failed (exit ${r.status}):\n${r.stdout}${r.stderr}`)
  }
  const key = ["-keyalg", "RSA", "-keysize", "2048", "-validity", "3650"]
  keytool(ca, [
    "-genkeypair",
    "-alias",
    "ca",
    ...key,
    "-dname",
    "CN=kafka-mongo-pipeline stack CA",
    "-ext",
    "bc:c",
  ])
  keytool(ca, ["-exportcert", "-alias", "ca", "-rfc", "-file", join(dir, "ca.pem")])
  keytool(broker, ["-genkeypair", "-alias", "broker", ...key, "-dname", "CN=localhost"])
  keytool(broker, ["-certreq", "-alias", "broker", "-file", join(dir, "broker.csr")])
  keytool(ca, [
    "-gencert",
    "-alias",
    "ca",
    "-rfc",
    "-validity",
    "3650",
    "-ext",
    "san=ip:127.0.0.1,dns:localhost",
    "-ext",
    "eku=serverAuth",
    "-infile",
    join(dir, "broker.csr"),
    "-outfile",
    join(dir, "broker.pem"),
  ])
  keytool(broker, ["-importcert", "-alias", "ca", "-noprompt", "-file", join(dir, "ca.pem")])
  keytool(broker, ["-importcert", "-alias", "broker", "-file", join(dir, "broker.pem")])
  rmSync(ca)
  rmSync(join(dir, "broker.csr"))
  writeFileSync(join(dir, basename(security.userPassword)), randomBytes(16).toString("hex"), { mode: 0o600 })
  makePrivate(dir)
  rmSync(paths.security, { recursive: true, force: true })
  renameSync(dir, paths.security)
  say(`kafka: made a throw-away CA and broker certificate in ${paths.security} (${elapsed(start)})`)
}

// FerretDB is built from the wrapper module in stack/ferretdb with the patched copies of
// upstream files in stack/ferretdb/_overlay (why: stack/ferretdb/README.md). Go refuses
// -overlay for files in the module cache, so the build copies the FerretDB module under
// STACK_DIR, writes the patched files into the copy, and points a `replace` at it through an
// alternate go.mod (-modfile); the committed go.mod stays as it is.
const ferretDir = join(root, "stack", "ferretdb")
const ferretModule = "github.com/FerretDB/FerretDB"
const overlayDir = join(ferretDir, "_overlay")

const filesUnder = (dir: string, prefix = ""): ReadonlyArray<string> =>
  readdirSync(join(dir, prefix), { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? filesUnder(dir, join(prefix, e.name)) : [join(prefix, e.name)]))
    .sort()

const ferretSources = () => [
  "go.mod",
  "go.sum",
  "main.go",
  ...filesUnder(overlayDir).map((f) => join("_overlay", f)),
]

/** Identifies the FerretDB sources and patches; a binary built from others is rebuilt. */
export const ferretBuild = (): string => {
  const h = createHash("sha256")
  for (const f of ferretSources())
    h.update(`${f}\0`)
      .update(readFileSync(join(ferretDir, f)))
      .update("\0")
  return h.digest("hex").slice(0, 16)
}

const ferretVersion = (): string =>
  /FerretDB\/FerretDB (v[\d.]+)/.exec(readFileSync(join(ferretDir, "go.mod"), "utf8"))?.[1] ?? "1.24"

/** The patched files and the sha256 of the upstream files they were made from (SHA256SUMS). */
const ferretPatches = (): ReadonlyArray<{ readonly file: string; readonly upstream: string }> =>
  readFileSync(join(overlayDir, "SHA256SUMS"), "utf8")
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => {
      const [upstream = "", file = ""] = l.trim().split(/\s+/)
      return { file, upstream }
    })

const go = (args: ReadonlyArray<string>, what: string, extraEnv: Record<string, string> = {}) => {
  const r = spawnSync("go", args, {
    cwd: ferretDir,
    encoding: "utf8",
    env: { ...process.env, CGO_ENABLED: "0", ...extraEnv },
    stdio: ["ignore", "pipe", "pipe"],
    maxBuffer: 64 * 1024 * 1024,
  })
  if (r.status !== 0) {
    throw new StackError(
      `${what} failed (exit ${r.status}). Is the Go module proxy reachable?\n${r.stdout}${r.stderr}`,
    )
  }
  return r.stdout
}

/** Copies the FerretDB module from Go's module cache and applies the patches to the copy. */
const patchedFerretModule = (): string => {
  const info = JSON.parse(go(["mod", "download", "-json", ferretModule], "go mod download of FerretDB")) as {
    Dir?: string
  }
  if (info.Dir === undefined) throw new StackError(`go mod download did not say where ${ferretModule} is`)
  const patches = ferretPatches()
  const patched = new Set(patches.map((p) => p.file))
  for (const f of filesUnder(overlayDir)) {
    if (f !== "SHA256SUMS" && !patched.has(f))
      throw new StackError(`stack/ferretdb/_overlay/${f} is not in SHA256SUMS`)
  }
  for (const { file, upstream } of patches) {
    const actual = createHash("sha256")
      .update(readFileSync(join(info.Dir, file)))
      .digest("hex")
    if (actual !== upstream) {
      throw new StackError(
        `stack/ferretdb/_overlay/${file} patches a different ${file} than the one of ${ferretModule} in go.mod ` +
          `(sha256 ${actual}, expected ${upstream}): redo the patch for this version (stack/ferretdb/README.md)`,
      )
    }
  }
  const copy = join(paths.ferretBuild, "module")
  rmSync(copy, { recursive: true, force: true })
  for (const f of filesUnder(info.Dir)) {
    mkdirSync(dirname(join(copy, f)), { recursive: true })
    copyFileSync(join(info.Dir, f), join(copy, f))
    chmodSync(join(copy, f), 0o644) // the module cache's files are read-only
  }
  for (const { file } of patches) copyFileSync(join(overlayDir, file), join(copy, file))
  return copy
}

const ensureFerretBinary = () => {
  const build = ferretBuild()
  if (existsSync(paths.ferretBin) && isCurrent(paths.ferretStamp, build)) return
  requireTool("go", ["version"], "to build FerretDB (Go 1.24 or newer)")
  const start = Date.now()
  say(
    "mongodb: building FerretDB 1.24 with the stack's patches (first time on this machine takes a minute or two) ...",
  )
  mkdirSync(paths.ferretBuild, { recursive: true })
  const module = patchedFerretModule()
  const modfile = join(paths.ferretBuild, "go.mod")
  writeFileSync(
    modfile,
    `${readFileSync(join(ferretDir, "go.mod"), "utf8")}\nreplace ${ferretModule} => ${module}\n`,
  )
  copyFileSync(join(ferretDir, "go.sum"), join(paths.ferretBuild, "go.sum"))
  // Built beside the binary and renamed over it, so that a server running the old one keeps running.
  const next = `${paths.ferretBin}.next`
  go(
    [
      "build",
      `-modfile=${modfile}`,
      "-tags",
      "ferretdb_no_postgresql",
      "-ldflags",
      `-X main.build=${build}`,
      "-o",
      next,
      ".",
    ],
    "go build of FerretDB",
  )
  renameSync(next, paths.ferretBin)
  writeFileSync(paths.ferretStamp, build)
  say(`mongodb: FerretDB built in ${elapsed(start)}`)
}

/** Fetches, makes and builds what starting `which` needs, before any start-up clock runs. */
const prepare = (which: ReadonlyArray<Service>) => {
  for (const d of [paths.logs, paths.pids, join(settings.dir, "bin")]) mkdirSync(d, { recursive: true })
  if (which.includes("kafka")) {
    ensureKafkaJars()
    ensureKafkaSecurity()
  }
  if (which.includes("mongodb")) ensureFerretBinary()
}

// ---------------------------------------------------------------------------------------------
// Starting and stopping

const serverProperties = () => {
  const { host, kafkaPort, controllerPort, kafkaSaslPort } = settings
  const storePassword = readFileSync(security.keystorePassword, "utf8").trim()
  const sasl = "listener.name.sasl_ssl"
  return [
    "process.roles=broker,controller",
    "node.id=1",
    `controller.quorum.voters=1@${host}:${controllerPort}`,
    `listeners=PLAINTEXT://${host}:${kafkaPort},CONTROLLER://${host}:${controllerPort},SASL_SSL://${host}:${kafkaSaslPort}`,
    `advertised.listeners=PLAINTEXT://${host}:${kafkaPort},SASL_SSL://${host}:${kafkaSaslPort}`,
    "controller.listener.names=CONTROLLER",
    "inter.broker.listener.name=PLAINTEXT",
    "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL",
    // SASL_SSL with PLAIN, as Confluent Cloud: one user, the TLS certificate from ensureKafkaSecurity.
    `${sasl}.sasl.enabled.mechanisms=PLAIN`,
    `${sasl}.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required ` +
      `user_${kafkaSasl.username}="${kafkaSasl.password()}";`,
    `${sasl}.ssl.keystore.type=PKCS12`,
    `${sasl}.ssl.keystore.location=${security.keystore}`,
    `${sasl}.ssl.keystore.password=${storePassword}`,
    `${sasl}.ssl.key.password=${storePassword}`,
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
}

const java = (args: string[]) => [
  "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
  "-Dorg.slf4j.simpleLogger.log.kafka.server.KafkaRaftServer=info",
  "-Dorg.slf4j.simpleLogger.showDateTime=true",
  "-cp",
  `${paths.lib}/*`,
  ...args,
]

const formatKafkaStorage = () => {
  writeFileSync(paths.kafkaProps, serverProperties(), { mode: 0o600 })
  chmodSync(paths.kafkaProps, 0o600) // it holds the keystore's and the user's passwords
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

/** `privateFiles`: the server makes its files readable by the owner only (umask 077). */
const launch = (s: Service, command: string, args: string[], privateFiles = false): ChildProcess => {
  const out = openSync(logFile(s), "a")
  // The child takes the umask it is spawned with; spawn forks before it returns.
  const umask = privateFiles ? process.umask(0o077) : undefined
  let child: ChildProcess
  try {
    child = spawn(command, args, { detached: true, stdio: ["ignore", out, out] })
  } finally {
    if (umask !== undefined) process.umask(umask)
  }
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
    await sleep(250)
  }
  throw new StackError(
    `${s} did not become ready within ${settings.startTimeoutMs / 1000}s; see ${logFile(s)}`,
  )
}

export type UpResult = { readonly service: Service; readonly started: boolean; readonly detail: string }

const requireFreePort = async (port: number, what: string, variable: string) => {
  if (await portOpen(port)) {
    throw new StackError(`port ${port} (${what}) is taken by another process; stop it or set ${variable}`)
  }
}

const upKafka = async (): Promise<UpResult> => {
  if (await kafkaAnswers()) {
    const sasl = (await portOpen(settings.kafkaSaslPort))
      ? ""
      : `; it has no SASL_SSL listener on port ${settings.kafkaSaslPort} (started by an older stack?): ` +
        "`npm run stack -- restart kafka` adds it"
    return {
      service: "kafka",
      started: false,
      detail: `reusing the Kafka broker already on ${address("kafka")}${sasl}`,
    }
  }
  if (await portOpen(settings.kafkaPort)) {
    throw new StackError(
      `port ${settings.kafkaPort} is taken by a process that is not a Kafka broker; stop it or set STACK_KAFKA_PORT`,
    )
  }
  await requireFreePort(settings.controllerPort, "Kafka controller", "STACK_KAFKA_CONTROLLER_PORT")
  await requireFreePort(settings.kafkaSaslPort, "Kafka SASL_SSL listener", "STACK_KAFKA_SASL_PORT")
  prepare(["kafka"])
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
  await waitUntil(
    "kafka",
    async () => (await kafkaAnswers()) && (await portOpen(settings.kafkaSaslPort)),
    child,
  )
  return {
    service: "kafka",
    started: true,
    detail:
      `started Apache Kafka ${kafkaVersion()} on ${address("kafka")}, SASL_SSL on port ${settings.kafkaSaslPort} ` +
      `(pid ${child.pid}) in ${elapsed(start)}`,
  }
}

const upMongo = async (): Promise<UpResult> => {
  const existing = await mongoAnswers()
  if (existing !== undefined) {
    const outdated =
      existing.build !== undefined && existing.build !== ferretBuild()
        ? `; it runs a build other than the current stack/ferretdb (${existing.build}): ` +
          "`npm run stack -- restart mongodb` replaces it"
        : ""
    return {
      service: "mongodb",
      started: false,
      detail: `reusing ${existing.description} already on ${address("mongodb")}${outdated}`,
    }
  }
  if (await portOpen(settings.mongoPort)) {
    throw new StackError(
      `port ${settings.mongoPort} is taken by a process that does not speak MongoDB; stop it or set STACK_MONGODB_PORT`,
    )
  }
  prepare(["mongodb"])
  // The stack's database: private to its owner, as are the files FerretDB makes in it.
  makePrivate(paths.mongoData)
  const start = Date.now()
  const child = launch(
    "mongodb",
    paths.ferretBin,
    ["-listen", address("mongodb"), "-data", paths.mongoData],
    true,
  )
  await waitUntil("mongodb", async () => (await mongoAnswers()) !== undefined, child)
  return {
    service: "mongodb",
    started: true,
    detail: `started ${(await mongoAnswers())?.description} on ${address("mongodb")} (pid ${child.pid}) in ${elapsed(start)}`,
  }
}

const answers = async (s: Service) => (s === "kafka" ? kafkaAnswers() : (await mongoAnswers()) !== undefined)

/** Starts `s` unless it already answers, and waits until it is ready. */
export const start = async (s: Service): Promise<UpResult> => {
  prepare([s])
  const result = await (s === "kafka" ? upKafka() : upMongo())
  say(`${result.service}: ${result.detail}`)
  return result
}

/** Starts what does not answer yet (both services by default); a no-op when all are up. */
export const up = async (which: ReadonlyArray<Service> = services): Promise<ReadonlyArray<UpResult>> => {
  // Fetch and build first, one after the other: the builds block this process, and no
  // service's start-up clock may run while they do.
  const missing = await Promise.all(which.map(async (s) => ((await answers(s)) ? [] : [s])))
  prepare(missing.flat())
  const results = await Promise.all(which.map((s) => (s === "kafka" ? upKafka() : upMongo())))
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
  if (!(await waitForExit(pid, 30_000))) {
    process.kill(pid, "SIGKILL")
    await waitForExit(pid, 10_000)
  }
  rmSync(pidFile(s), { force: true })
  return `${s}: stopped (pid ${pid})`
}

export const down = async (which: ReadonlyArray<Service> = services) => {
  for (const line of await Promise.all(which.map(stop))) say(line)
}

/**
 * SIGKILLs the process the stack started for `s` (a crash: no clean shutdown) and waits until
 * it is gone. False when the stack had started none.
 */
export const kill = async (s: Service): Promise<boolean> => {
  const pid = ourPid(s)
  if (pid === undefined) {
    rmSync(pidFile(s), { force: true })
    say(`${s}: not running (no process started by this stack)`)
    return false
  }
  process.kill(pid, "SIGKILL")
  if (!(await waitForExit(pid, 10_000))) throw new StackError(`${s} (pid ${pid}) survived SIGKILL for 10 s`)
  rmSync(pidFile(s), { force: true })
  say(`${s}: killed (SIGKILL, pid ${pid})`)
  return true
}

/**
 * Stops `s` if the stack started it, then starts it again on the same data and waits until it
 * is ready. A new build (changed stack/ sources) is made before the stop.
 */
export const restart = async (s: Service): Promise<UpResult> => {
  prepare([s])
  say(await stop(s))
  if (await answers(s)) {
    throw new StackError(
      `${s} on ${address(s)} was not started by this stack (no pid file in ${paths.pids}), so it cannot restart it`,
    )
  }
  return start(s)
}

const status = async () => {
  const [kafka, sasl, mongo] = await Promise.all([
    kafkaAnswers(),
    portOpen(settings.kafkaSaslPort),
    mongoAnswers(),
  ])
  const owner = (s: Service) => {
    const pid = ourPid(s)
    return pid === undefined ? "not started by this stack" : `pid ${pid}`
  }
  const build =
    mongo?.build === undefined ? "" : mongo.build === ferretBuild() ? "  current build" : "  OUTDATED build"
  say(
    `kafka:   ${kafka ? "up" : "down"}  Apache Kafka ${kafkaVersion() ?? "(jars not fetched)"}  ${address("kafka")}  ${owner("kafka")}`,
  )
  say(
    `         SASL_SSL ${sasl ? "up" : "down"}  ${settings.host}:${settings.kafkaSaslPort}  user ${kafkaSasl.username}, CA ${kafkaSasl.caFile}`,
  )
  say(
    `mongodb: ${mongo !== undefined ? "up" : "down"}  ${mongo?.description ?? "FerretDB 1.24"}  ${address("mongodb")}  ${owner("mongodb")}${build}`,
  )
  return kafka && mongo !== undefined
}

const logs = (which: ReadonlyArray<Service>) => {
  for (const s of which) {
    say(`==> ${logFile(s)} <==`)
    if (existsSync(logFile(s))) say(readFileSync(logFile(s), "utf8").split("\n").slice(-60).join("\n"))
  }
}

const usage = `usage: npm run stack -- <command>
  up [kafka|mongodb]       start what is not running yet (both by default) and wait until ready
  down [kafka|mongodb]     stop what up started (SIGTERM)
  restart kafka|mongodb    stop it if up started it, start it again on the same data, wait until ready
  kill kafka|mongodb       SIGKILL the process up started (a crash, for tests)
  status                   what answers on the ports; exit 1 unless both are up
  logs [kafka|mongodb]     the last lines of the logs`

const main = async (argv: ReadonlyArray<string>) => {
  const [command, ...rest] = argv
  const which = rest.filter((s): s is Service => s === "kafka" || s === "mongodb")
  if (which.length !== rest.length) {
    process.stderr.write(`${usage}\n`)
    return 2
  }
  const one = which.length === 1 ? which[0] : undefined
  switch (command) {
    case "up":
      await up(which.length > 0 ? which : undefined)
      return 0
    case "down":
      await down(which.length > 0 ? which : undefined)
      return 0
    case "restart":
      if (one === undefined) break
      await restart(one)
      return 0
    case "kill":
      if (one === undefined) break
      await kill(one)
      return 0
    case "status":
      return (await status()) ? 0 : 1
    case "logs":
      logs(which.length > 0 ? which : services)
      return 0
  }
  process.stderr.write(`${usage}\n`)
  return 2
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
