/**
 * The one-command demo: brings the local stack up, starts the service and the test-data
 * generator on fresh topics, lets them run for a while (or until Ctrl-C), stops both cleanly
 * and prints where every record went.
 *
 *   npm run demo [-- --seconds 20 --rate 200]
 */
import { type ChildProcess, spawn } from "node:child_process"
import { dirname, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import { Kafka, logLevel } from "kafkajs"
import { MongoClient } from "mongodb"
import { registerCodecs } from "../src/Kafka/Codecs.js"
import { silenceKafkajsTimeoutWarning } from "../src/Kafka/NodeWarnings.js"
import { settings as stack, up } from "./stack.js"

silenceKafkajsTimeoutWarning()

registerCodecs()
const root = resolve(dirname(fileURLToPath(import.meta.url)), "..")

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "20" },
    rate: { type: "string", default: "200" },
  },
})
const seconds = Number(values.seconds)
const rate = Number(values.rate)
if (!(seconds > 0) || !(rate > 0)) {
  process.stderr.write(
    "usage: npm run demo -- [--seconds N] [--rate RECORDS_PER_SECOND] (both positive numbers)\n",
  )
  process.exit(2)
}

const run = `demo-${new Date().toISOString().slice(0, 19).replace(/[-:T]/g, "")}`
const brokers = `${stack.host}:${stack.kafkaPort}`
const mongoUri = `mongodb://${stack.host}:${stack.mongoPort}/`
const env = {
  ...process.env,
  ENV_FILE: "/nonexistent/.env",
  KAFKA__BOOTSTRAP_SERVERS: brokers,
  KAFKA__TOPIC_SOURCE: `${run}.orders`,
  KAFKA__TOPIC_SINK: `${run}.orders.clean`,
  KAFKA__CONSUMER_GROUP: run,
  MONGODB__CONNECTION_STRING: mongoUri,
  MONGODB__DATABASE: "demo",
  MONGODB__COLLECTION: run,
  METRICS__PROGRESS_INTERVAL_SECONDS: "5",
}

const say = (line: string) => process.stdout.write(`demo: ${line}\n`)

/** Where the service's HTTP port answers, from the settings the demo passes on (defaults: 9464, every interface). */
const statusPage = () => {
  const port = process.env.METRICS__PORT?.trim() || "9464"
  const bound = process.env.METRICS__HOST?.trim() || "::"
  const host =
    bound === "::" || bound === "0.0.0.0" ? "127.0.0.1" : bound.includes(":") ? `[${bound}]` : bound
  const token =
    (process.env.METRICS__STATUS_TOKEN?.trim() ?? "") === ""
      ? ""
      : " (asks for METRICS__STATUS_TOKEN: open /?token=... once)"
  return `http://${host}:${port}/${token}`
}

/** The service logs JSON; the demo shows each line as "LEVEL message". */
const readable = (line: string): string => {
  try {
    const entry = JSON.parse(line) as { level?: string; message?: unknown }
    return `${entry.level ?? ""} ${typeof entry.message === "string" ? entry.message : JSON.stringify(entry.message)}`
  } catch {
    return line
  }
}

const launch = (args: ReadonlyArray<string>, prefix: string): ChildProcess => {
  const child = spawn(process.execPath, ["--import", "tsx", ...args], {
    cwd: root,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  })
  const forward = (d: Buffer) => {
    for (const line of d.toString().split("\n"))
      if (line.trim() !== "") process.stdout.write(`${prefix} ${readable(line)}\n`)
  }
  child.stdout?.on("data", forward)
  child.stderr?.on("data", forward)
  return child
}

const exitOf = (child: ChildProcess) =>
  new Promise<number | null>((done) =>
    child.exitCode !== null ? done(child.exitCode) : child.once("exit", done),
  )

const kafka = new Kafka({ brokers: [brokers], logLevel: logLevel.NOTHING })

const topicSize = async (topic: string) => {
  const admin = kafka.admin()
  await admin.connect()
  try {
    const offsets = await admin.fetchTopicOffsets(topic).catch(() => [])
    return offsets.reduce((n, p) => n + Number(p.high) - Number(p.low), 0)
  } finally {
    await admin.disconnect()
  }
}

/**
 * The messages of a topic as a read_committed consumer sees them (with KAFKA__DELIVERY=
 * exactly_once, the messages of aborted transactions, and the transaction markers, are not
 * counted): read from the start until every partition reaches its end offset.
 */
const committedCount = async (topic: string): Promise<number> => {
  const admin = kafka.admin()
  await admin.connect()
  const ends = new Map(
    (await admin.fetchTopicOffsets(topic).catch(() => [])).map((p) => [p.partition, Number(p.high)]),
  )
  await admin.disconnect()
  const pending = new Set([...ends].filter(([, end]) => end > 0).map(([p]) => p))
  if (pending.size === 0) return 0
  const consumer = kafka.consumer({ groupId: `demo-count-${Date.now()}`, readUncommitted: false })
  let count = 0
  await consumer.connect()
  try {
    await consumer.subscribe({ topic, fromBeginning: true })
    await new Promise<void>((done) => {
      const timer = setTimeout(done, 60_000)
      void consumer.run({
        eachBatch: async ({ batch }) => {
          count += batch.messages.length
          if (Number(batch.lastOffset()) + 1 >= (ends.get(batch.partition) ?? 0))
            pending.delete(batch.partition)
          if (pending.size === 0) {
            clearTimeout(timer)
            done()
          }
        },
      })
    })
  } finally {
    await consumer.disconnect()
  }
  return count
}

const caughtUp = async () => {
  const admin = kafka.admin()
  await admin.connect()
  try {
    const [ends, committed] = await Promise.all([
      admin.fetchTopicOffsets(env.KAFKA__TOPIC_SOURCE),
      admin.fetchOffsets({ groupId: run, topics: [env.KAFKA__TOPIC_SOURCE] }),
    ])
    const done = new Map(committed[0]?.partitions.map((p) => [p.partition, Number(p.offset)]) ?? [])
    return ends.every((p) => Number(p.high) === 0 || done.get(p.partition) === Number(p.high))
  } finally {
    await admin.disconnect()
  }
}

const main = async () => {
  say("bringing the local stack up (Kafka + FerretDB)")
  await up()
  say(`starting the service on topic ${env.KAFKA__TOPIC_SOURCE}`)
  say(`status page: ${statusPage()} (live while the demo runs; /metrics, /healthz and /readyz beside it)`)
  const service = launch(["src/main.ts"], "[service]  ")
  let serviceOutput = ""
  service.stdout?.on("data", (d: Buffer) => {
    serviceOutput += d.toString()
  })
  await new Promise((r) => setTimeout(r, 3000))
  say(`generating ${rate} records/s for ${seconds} s (mixed: valid, invalid, duplicates, malformed)`)
  const started = Date.now()
  const generator = launch(
    [
      "scripts/generate.ts",
      "--output",
      "kafka",
      "--bootstrap-servers",
      brokers,
      "--topic",
      env.KAFKA__TOPIC_SOURCE,
      "--rate",
      String(rate),
      "--total",
      String(Math.round(rate * seconds)),
      "--malformed-ratio",
      "0.01",
    ],
    "[generate] ",
  )
  let interrupted = false
  process.on("SIGINT", () => {
    interrupted = true
    generator.kill("SIGINT")
  })
  await exitOf(generator)
  const produced = await topicSize(env.KAFKA__TOPIC_SOURCE)
  say(
    interrupted
      ? "interrupted: letting the service catch up"
      : "generator done: letting the service catch up",
  )
  const deadline = Date.now() + 60_000
  while (Date.now() < deadline && !(await caughtUp())) await new Promise((r) => setTimeout(r, 500))
  const elapsed = (Date.now() - started) / 1000
  service.kill("SIGTERM")
  const code = await exitOf(service)

  const documents = await (async () => {
    const client = new MongoClient(mongoUri)
    await client.connect()
    try {
      return await client.db("demo").collection(run).countDocuments()
    } finally {
      await client.close()
    }
  })()
  const stopped = serviceOutput.split("\n").find((l) => l.includes('"pipeline stopped"'))
  const duplicates =
    stopped === undefined
      ? "?"
      : String(
          (JSON.parse(stopped) as { annotations: { summary: { duplicates: number } } }).annotations.summary
            .duplicates,
        )
  // As a reader with isolation level read_committed sees them.
  const sink = await committedCount(env.KAFKA__TOPIC_SINK)
  const dlq = await committedCount(`${env.KAFKA__TOPIC_SOURCE}.dlq`)
  process.stdout.write(
    [
      "",
      `what happened (run ${run}, service exit code ${code}):`,
      `  records in (source topic)          ${produced}`,
      `  valid, written to MongoDB          ${documents}   (demo.${run})`,
      `  valid, written to the sink topic   ${sink}   (${env.KAFKA__TOPIC_SINK}, as read_committed sees it)`,
      `  invalid/malformed, dead-letter     ${dlq}   (${env.KAFKA__TOPIC_SOURCE}.dlq, as read_committed sees it)`,
      `  duplicates removed                 ${duplicates}`,
      `  throughput                         ${(produced / elapsed).toFixed(0)} records/s over ${elapsed.toFixed(1)} s`,
      "",
    ].join("\n"),
  )
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`demo: ${e instanceof Error ? e.message : String(e)}\n`)
    process.exit(1)
  },
)
