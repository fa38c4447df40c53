/**
 * The local stack as the benchmark uses it: brought up if needed (scripts/stack.ts), a Kafka
 * admin client for topics, end offsets and committed offsets, a MongoDB client for counting
 * and dropping databases, and the versions of everything measured.
 */

import { execFileSync } from "node:child_process"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { type Admin, Kafka, type LogEntry, logLevel } from "kafkajs"
import { MongoClient } from "mongodb"
import { kafkaVersion, settings, up } from "../../scripts/stack.js"
import { registerCodecs } from "../../src/Kafka/Codecs.js"

export const root = join(import.meta.dirname, "..", "..")
export const brokers: ReadonlyArray<string> = [`${settings.host}:${settings.kafkaPort}`]
export const mongoUri = `mongodb://${settings.host}:${settings.mongoPort}/`

const stderrLog = (entry: LogEntry): void => {
  process.stderr.write(`bench: kafkajs ${entry.namespace}: ${entry.log.message}\n`)
}

export const kafkaClient = (clientId: string): Kafka => {
  registerCodecs()
  return new Kafka({ clientId, brokers: [...brokers], logLevel: logLevel.ERROR, logCreator: () => stderrLog })
}

/** Brings the stack up (or reuses it); its report goes to stderr, stdout is for the table. */
export const ensureStack = async (): Promise<void> => {
  const write = process.stdout.write
  process.stdout.write = process.stderr.write.bind(process.stderr)
  try {
    await up()
  } finally {
    process.stdout.write = write
  }
}

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms))

export class Cluster {
  private constructor(private readonly admin: Admin) {}

  static async connect(): Promise<Cluster> {
    const admin = kafkaClient("bench-admin").admin()
    await admin.connect()
    return new Cluster(admin)
  }

  async createTopic(topic: string, partitions: number, config: Record<string, string> = {}): Promise<void> {
    await this.admin.createTopics({
      topics: [
        {
          topic,
          numPartitions: partitions,
          configEntries: Object.entries(config).map(([name, value]) => ({ name, value })),
        },
      ],
      waitForLeaders: true,
    })
  }

  /** The next offset to be written, per partition. */
  async endOffsets(topic: string): Promise<Map<number, bigint>> {
    const offsets = await this.admin.fetchTopicOffsets(topic)
    return new Map(offsets.map((o) => [o.partition, BigInt(o.high)]))
  }

  async messageCount(topic: string): Promise<number> {
    const offsets = await this.admin.fetchTopicOffsets(topic)
    return offsets.reduce((n, o) => n + Number(BigInt(o.high) - BigInt(o.low)), 0)
  }

  /** The group's committed offsets on `topic`, per partition (-1 where nothing is committed). */
  async committed(group: string, topic: string): Promise<Map<number, bigint>> {
    const [found] = await this.admin.fetchOffsets({ groupId: group, topics: [topic] })
    return new Map((found?.partitions ?? []).map((p) => [p.partition, BigInt(p.offset)]))
  }

  /**
   * Polls until the group has committed `ends` on every partition; resolves with the time
   * (performance.now()) it was first seen, or rejects after `timeoutMs`.
   */
  async waitForCommit(
    group: string,
    topic: string,
    ends: ReadonlyMap<number, bigint>,
    timeoutMs: number,
    pollMs = 50,
  ): Promise<number> {
    const deadline = performance.now() + timeoutMs
    for (;;) {
      const committed = await this.committed(group, topic)
      if ([...ends].every(([p, end]) => (committed.get(p) ?? -1n) >= end)) return performance.now()
      if (performance.now() > deadline) {
        const behind = [...ends].map(([p, end]) => `${p}: ${committed.get(p) ?? -1n}/${end}`).join(", ")
        throw new Error(`group ${group} did not commit the end of ${topic} in time (${behind})`)
      }
      await sleep(pollMs)
    }
  }

  async deleteTopics(topics: ReadonlyArray<string>): Promise<void> {
    const existing = new Set(await this.admin.listTopics())
    const present = topics.filter((t) => existing.has(t))
    if (present.length > 0) await this.admin.deleteTopics({ topics: present, timeout: 30_000 })
  }

  async deleteGroups(groups: ReadonlyArray<string>): Promise<void> {
    if (groups.length > 0) await this.admin.deleteGroups([...groups]).catch(() => undefined)
  }

  async close(): Promise<void> {
    await this.admin.disconnect().catch(() => undefined)
  }
}

export class Mongo {
  private constructor(readonly client: MongoClient) {}

  static async connect(): Promise<Mongo> {
    const client = new MongoClient(mongoUri, { serverSelectionTimeoutMS: 10_000 })
    await client.connect()
    return new Mongo(client)
  }

  count(database: string, collection: string): Promise<number> {
    return this.client.db(database).collection(collection).countDocuments()
  }

  async drop(database: string): Promise<void> {
    await this.client.db(database).dropDatabase()
  }

  /** Drops every database whose name starts with `prefix` (a run's leftovers). */
  async dropAll(prefix: string): Promise<ReadonlyArray<string>> {
    const { databases } = await this.client.db("admin").admin().listDatabases({ nameOnly: true })
    const ours = databases.map((d) => d.name).filter((name) => name.startsWith(prefix))
    for (const name of ours) await this.drop(name)
    return ours
  }

  async serverVersion(): Promise<string> {
    const info = await this.client.db("admin").command({ buildInfo: 1 })
    const mongo = typeof info.version === "string" ? info.version : "unknown"
    if (!("ferretdbVersion" in info)) return `MongoDB ${mongo}`
    // The embedded build reports "unknown" as its own version; the wrapper module pins it.
    const gomod = readFileSync(join(root, "stack", "ferretdb", "go.mod"), "utf8")
    const ferret = /FerretDB\/FerretDB (v[\d.]+)/.exec(gomod)?.[1] ?? String(info.ferretdbVersion)
    return `FerretDB ${ferret} (MongoDB ${mongo} wire protocol, SQLite backend)`
  }

  async close(): Promise<void> {
    await this.client.close().catch(() => undefined)
  }
}

const packageVersion = (name: string): string => {
  const json: unknown = JSON.parse(readFileSync(join(root, "node_modules", name, "package.json"), "utf8"))
  return typeof json === "object" && json !== null && "version" in json ? String(json.version) : "unknown"
}

const git = (...args: string[]): string => {
  try {
    return execFileSync("git", args, { cwd: root, encoding: "utf8" }).trim()
  } catch {
    return "unknown"
  }
}

export interface Versions {
  readonly node: string
  readonly kafka: string
  readonly mongodb: string
  readonly kafkajs: string
  readonly mongodbDriver: string
  readonly effect: string
  readonly commit: string
  /** Files under src/ that differ from the commit (the service measured is the working tree). */
  readonly srcChanges: ReadonlyArray<string>
}

export const versions = async (mongo: Mongo): Promise<Versions> => ({
  node: process.version,
  kafka: `Apache Kafka ${kafkaVersion() ?? "unknown"} (KRaft, single node)`,
  mongodb: await mongo.serverVersion(),
  kafkajs: packageVersion("kafkajs"),
  mongodbDriver: packageVersion("mongodb"),
  effect: packageVersion("effect"),
  commit: git("rev-parse", "HEAD"),
  srcChanges: git("status", "--porcelain", "--", "src", "config")
    .split("\n")
    .filter((l) => l !== ""),
})
