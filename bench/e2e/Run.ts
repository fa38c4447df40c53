/**
 * One benchmark run: its name (a timestamp), its result directory, its clients, and what it
 * created (topics, consumer groups, databases), so that everything is removed at the end, on
 * failure and on Ctrl-C alike, unless --keep says otherwise.
 */
import { mkdirSync } from "node:fs"
import { join } from "node:path"
import { settings } from "../../scripts/stack.js"
import { Child } from "./Child.js"
import { farDuplicateLimit, shippedSpec } from "./Dataset.js"
import { Cluster, ensureStack, Mongo, root } from "./Infra.js"
import type { Options } from "./Options.js"
import { pidListeningOn } from "./Proc.js"

export interface Run {
  readonly id: string
  readonly dir: string
  readonly options: Options
  readonly cluster: Cluster
  readonly mongo: Mongo
  /** Duplicates further back than this many records are left out of the stream (see Dataset). */
  readonly farLimit: number | undefined
  /** Pids of the broker and the database server, for their CPU use (undefined if not found). */
  readonly stack: { readonly kafka: number | undefined; readonly ferretdb: number | undefined }
  readonly topic: (name: string) => string
  readonly group: (name: string) => string
  readonly database: (name: string) => string
  readonly cleanUp: () => Promise<void>
}

const stamp = (d: Date) => d.toISOString().replace(/[-:]/g, "").replace(/\..*$/, "").toLowerCase()

const openRun = async (options: Options): Promise<Run> => {
  const time = stamp(new Date())
  const id = `bench-e2e-${time}`
  const dbPrefix = `bench_e2e_${time}`
  const dir = options.out ?? join(root, "bench", "results", `e2e-${time}`)
  mkdirSync(dir, { recursive: true })
  const cluster = await Cluster.connect()
  const mongo = await Mongo.connect()
  const topics: string[] = []
  const groups: string[] = []
  const cleanUp = async () => {
    if (!options.keep) {
      await mongo.dropAll(dbPrefix).catch((e: unknown) => warn("dropping the databases", e))
      await cluster.deleteGroups(groups)
      await cluster.deleteTopics(topics).catch((e: unknown) => warn("deleting the topics", e))
    }
    await cluster.close()
    await mongo.close()
  }
  let cleaning: Promise<void> | undefined
  return {
    id,
    dir,
    options,
    cluster,
    mongo,
    // 0: every duplicate is further back than that, so every one is left out.
    farLimit: options.noDuplicates ? 0 : options.farDuplicates ? undefined : farDuplicateLimit(shippedSpec()),
    stack: { kafka: pidListeningOn(settings.kafkaPort), ferretdb: pidListeningOn(settings.mongoPort) },
    topic: (name) => {
      const topic = `${id}.${name}`
      topics.push(topic)
      return topic
    },
    group: (name) => {
      const group = `${id}.${name}`
      groups.push(group)
      return group
    },
    database: (name) => `${dbPrefix}_${name}`,
    // Idempotent: the end of the run and a Ctrl-C may both ask.
    cleanUp: () => (cleaning ??= cleanUp()),
  }
}

const say = (line: string) => process.stderr.write(`bench: ${line}\n`)

/**
 * Brings the local stack up (a running one is reused), opens a run and hands it to `body`;
 * then, whether `body` ends, fails or Ctrl-C comes first, stops the processes it started and
 * removes the run's topics, groups and databases.
 */
export const withRun = async (options: Options, body: (run: Run) => Promise<void>): Promise<void> => {
  say("bringing up the local stack (reused when already running)")
  await ensureStack()
  const run = await openRun(options)
  let stopping = false
  const interrupt = () => {
    if (stopping) process.exit(130)
    stopping = true
    say("interrupted: stopping the processes started and removing the run's topics and databases")
    void Promise.all([...Child.live].map((c) => c.stop(10_000)))
      .then(() => run.cleanUp())
      .finally(() => process.exit(130))
  }
  process.on("SIGINT", interrupt)
  process.on("SIGTERM", interrupt)
  try {
    await body(run)
  } finally {
    for (const c of Child.live) await c.stop(10_000)
    say(
      options.keep
        ? `keeping the topics (${run.id}.*) and databases`
        : "removing the run's topics and databases",
    )
    await run.cleanUp()
  }
}

const warn = (what: string, e: unknown) =>
  process.stderr.write(`bench: ${what} failed: ${e instanceof Error ? e.message : String(e)}\n`)
