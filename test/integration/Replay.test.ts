/**
 * `replay` against the real broker and FerretDB: dead letters the shipped pipeline made of the
 * generator's invalid records, replayed with a copy of the pipeline file whose quantity rule
 * allows what it refused. The dry run's counts are what the replay then does; the records the
 * relaxed rule lets through reach MongoDB and the sink topic with their original source
 * position, the rest go back to the dead-letter topic once, with a replay count; a second replay
 * writes nothing; a replay stopped by SIGTERM and run again loses and doubles nothing; with
 * exactly_once it writes in transactions.
 */
import { readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { type GeneratedRecord, generate } from "../../src/Generator/Records.js"
import {
  committedOffsets,
  createTopic,
  drain,
  dropDatabase,
  freshNames,
  kafka,
  type Names,
  produce,
  type ReadMessage,
  readTopic,
  root,
  serviceEnv,
  startService,
  waitFor,
  withMongo,
} from "./support/Service.js"
import { unique } from "./support/Stack.js"

const databases: string[] = []
afterAll(async () => {
  for (const db of databases) await dropDatabase(db).catch(() => undefined)
})

interface Summary {
  readonly read: number
  readonly replayed: number
  readonly written: number
  readonly stillInvalid: number
  readonly duplicates: number
  readonly filtered: number
  readonly alreadyCommitted: number
  readonly passedOver: Record<string, number>
  readonly passedOverTotal: number
  readonly dryRun: boolean
  readonly complete: boolean
}

/** The replay's last summary line (`replay finished`, or `replay stopped ...` after a signal). */
const summaryOf = (output: string): Summary => {
  const line = output
    .split("\n")
    .filter((l) => l.includes('"replay finished"') || l.includes('"replay stopped before'))
    .pop()
  assert.isDefined(line, output)
  return (JSON.parse(line!) as { annotations: { summary: Summary } }).annotations.summary
}

const replay = async (env: Record<string, string>, args: ReadonlyArray<string> = []) => {
  const run = startService(env, ["replay", ...args])
  const code = await run.exited
  return { code, output: run.output(), summary: summaryOf(run.output()) }
}

/** The relaxed copy of the shipped pipeline: quantities of 0 to 10,000 are in range (the shipped rule: 1 to 1,000). */
const relaxedPipeline = (name?: string) => {
  const shipped = `${root}/config/pipeline.yaml`
  const text = readFileSync(shipped, "utf8")
  const rule = "{ rule: Range, field: quantity, min: 1, max: 1000 }"
  assert.include(text, rule, "the shipped pipeline's quantity rule, as this test relaxes it")
  let relaxed = text.replace(rule, "{ rule: Range, field: quantity, min: 0, max: 10000 }")
  if (name !== undefined) relaxed = relaxed.replace(/^name: .*$/m, `name: ${name}`)
  const file = join(tmpdir(), `${unique("relaxed")}.yaml`)
  writeFileSync(file, relaxed)
  return file
}

const ends = async (topic: string): Promise<ReadonlyMap<number, number>> => {
  const admin = kafka.admin()
  await admin.connect()
  try {
    return new Map((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, Number(p.high)]))
  } finally {
    await admin.disconnect()
  }
}

/** `--to` for everything up to `ends` (the offset after each partition's last message). */
const toFlag = (upTo: ReadonlyMap<number, number>) =>
  [...upTo]
    .filter(([, end]) => end > 0)
    .map(([p, end]) => `${p}:${end - 1}`)
    .join(",")

const sorted = (values: Iterable<string>) => [...values].sort()

const replayedFrom = (messages: ReadonlyArray<ReadMessage>) =>
  messages.filter((m) => m.headers["pipeline.replay.count"] !== undefined)

const mongoDocuments = (database: string) =>
  withMongo((client) =>
    client
      .db(database)
      .collection<{ _id: string; _kafka?: { topic: string; partition: number; offset: number } }>("orders")
      .find({})
      .toArray(),
  )

let names: Names
let records: ReadonlyArray<GeneratedRecord>
/** The dead letters the service wrote. */
let deadLetters: ReadonlyArray<ReadMessage>
/** The dead-letter topic's end offsets once the service was done. */
let serviceEnds: ReadonlyMap<number, number>
/** The keys the relaxed rule lets through: the generator's records whose only defect is the quantity's range. */
let relaxedKeys: ReadonlySet<string>

beforeAll(async () => {
  names = freshNames("replay")
  databases.push(names.database)
  await createTopic(names.source, 3)
  records = [
    ...generate(
      {
        seed: 27,
        pattern: "mixed",
        invalidRatio: 0.3,
        duplicateRatio: 0.05,
        malformedRatio: 0.02,
        oversizedRatio: 0,
        oversizedBytes: 0,
        baseTime: Date.UTC(2026, 10, 27),
      },
      0,
      2000,
    ),
  ]
  await produce(names.source, records)
  const service = await drain(serviceEnv(names), names)
  assert.strictEqual(service.code, 0, service.output)
  deadLetters = await readTopic(names.dlq)
  serviceEnds = await ends(names.dlq)
  relaxedKeys = new Set(
    records
      .filter((r) => r.kind === "invalid" && r.defect === "out_of_range" && r.field === "order.quantity")
      .map((r) => r.key!),
  )
  assert.isAbove(relaxedKeys.size, 10, "the generator made records the relaxed rule lets through")
  // The oracle agrees with the dead letters: those turned away for the quantity's range alone.
  const byRangeOnly = deadLetters.filter((m) => {
    const reasons = JSON.parse(m.headers["pipeline.error.reasons"] ?? "[]") as Array<{
      field?: string
      rule: string
    }>
    return reasons.length === 1 && reasons[0]!.field === "quantity" && reasons[0]!.rule === "Range"
  })
  assert.deepStrictEqual(sorted(byRangeOnly.map((m) => m.key!)), sorted(relaxedKeys))
})

describe("replay", () => {
  it("a relaxed rule: the dry run says what the replay does, the replay writes it as the service would, a second replay writes nothing", async () => {
    // The test is about a changed pipeline file: the relaxed copy.
    const env = serviceEnv(names, { PIPELINE__FILE: relaxedPipeline() })
    const group = `${names.group}.replay`
    const sinkBefore = await readTopic(names.sink)
    const documentsBefore = (await mongoDocuments(names.database)).length

    const dry = await replay(env, ["--dry-run"])
    assert.strictEqual(dry.code, 0, dry.output)
    assert.isTrue(dry.summary.dryRun)
    assert.isTrue(dry.summary.complete)
    assert.strictEqual(dry.summary.read, deadLetters.length)
    assert.strictEqual(dry.summary.written, relaxedKeys.size)
    assert.strictEqual(dry.summary.stillInvalid, deadLetters.length - relaxedKeys.size)
    assert.include(dry.output, "Dry run: nothing was written and nothing was committed.")
    assert.include(
      dry.output,
      `${relaxedKeys.size} written`,
      "the counts by reason: every Range refusal written",
    )
    // Nothing written, nothing committed.
    assert.strictEqual((await readTopic(names.dlq)).length, deadLetters.length)
    assert.strictEqual((await readTopic(names.sink)).length, sinkBefore.length)
    assert.strictEqual((await mongoDocuments(names.database)).length, documentsBefore)
    assert.deepStrictEqual(
      [...(await committedOffsets(group, names.dlq)).values()].filter((o) => o >= 0),
      [],
      "the replay's group has committed nothing",
    )

    const live = await replay(env)
    assert.strictEqual(live.code, 0, live.output)
    for (const count of ["read", "replayed", "written", "stillInvalid", "duplicates", "filtered"] as const)
      assert.strictEqual(
        live.summary[count],
        dry.summary[count],
        `${count}: the dry run said what the replay did`,
      )
    assert.strictEqual(live.summary.read, live.summary.replayed + live.summary.passedOverTotal)

    // The sinks: the relaxed records, once each, from their original source position.
    const sink = replayedFrom(await readTopic(names.sink))
    assert.deepStrictEqual(sorted(sink.map((m) => m.key!)), sorted(relaxedKeys))
    const deadLetterOf = new Map(deadLetters.map((m) => [m.key, m]))
    for (const m of sink) {
      const original = deadLetterOf.get(m.key)!
      assert.strictEqual(m.headers["pipeline.source.topic"], names.source)
      assert.strictEqual(m.headers["pipeline.source.offset"], original.headers["pipeline.source.offset"])
      assert.strictEqual(m.headers["pipeline.replay.count"], "1")
      assert.isUndefined(
        m.headers["pipeline.error.stage"],
        "the dead letter's own headers are not carried on",
      )
      assert.strictEqual(m.headers["x-defect"], "out_of_range", "the original's headers are")
    }
    const documents = await mongoDocuments(names.database)
    assert.strictEqual(documents.length, documentsBefore + relaxedKeys.size)
    for (const d of documents.filter((d) => relaxedKeys.has(d._id))) {
      const original = deadLetterOf.get(d._id)!
      assert.deepStrictEqual(d._kafka, {
        topic: names.source,
        partition: Number(original.headers["pipeline.source.partition"]),
        offset: Number(original.headers["pipeline.source.offset"]),
      })
    }
    // The others: back to the dead-letter topic once each, with a replay count and their source.
    const again = replayedFrom(await readTopic(names.dlq))
    assert.strictEqual(again.length, live.summary.stillInvalid)
    assert.strictEqual(new Set(again.map((m) => m.headers["pipeline.replay.from"])).size, again.length)
    for (const m of again) {
      assert.strictEqual(m.headers["pipeline.replay.count"], "1")
      assert.strictEqual(m.headers["pipeline.source.topic"], names.source)
    }
    assert.deepStrictEqual(await committedOffsets(group, names.dlq), serviceEnds)

    const second = await replay(env)
    assert.strictEqual(second.code, 0, second.output)
    assert.strictEqual(second.summary.replayed, 0)
    assert.strictEqual(second.summary.read, again.length)
    assert.strictEqual(second.summary.passedOver.replayed_before, again.length)
    assert.strictEqual(replayedFrom(await readTopic(names.dlq)).length, again.length)
    assert.strictEqual(replayedFrom(await readTopic(names.sink)).length, relaxedKeys.size)
    assert.strictEqual((await mongoDocuments(names.database)).length, documents.length)
  })

  it("--reason and a time range select: the rest is passed over and counted", async () => {
    const env = serviceEnv(names, { PIPELINE__FILE: relaxedPipeline() })
    const run = await replay(env, [
      "--dry-run",
      "--group",
      unique("selective"),
      "--reason",
      "quantity",
      "--reason",
      "json",
      "--from",
      "2000-01-01T00:00:00Z",
      "--to",
      new Date(Date.now() + 3_600_000).toISOString(),
    ])
    assert.strictEqual(run.code, 0, run.output)
    const matching = deadLetters.filter((m) => {
      const reasons = m.headers["pipeline.error.reasons"] ?? ""
      return reasons.includes('"field":"quantity"') || reasons.includes('"rule":"json"')
    })
    assert.isAbove(matching.length, relaxedKeys.size, "malformed messages and conversions are among them")
    assert.isAtLeast(run.summary.read, deadLetters.length)
    assert.strictEqual(run.summary.replayed, matching.length)
    assert.strictEqual(run.summary.read, run.summary.replayed + run.summary.passedOverTotal)
    assert.isAbove(run.summary.passedOver.not_selected ?? 0, 0)
    assert.strictEqual(run.summary.written, relaxedKeys.size)
  })

  it("stopped by SIGTERM and run again: nothing lost, nothing doubled", async () => {
    const group = unique("interrupted")
    const sink = unique("replay-sink")
    const dlq = unique("replay-dlq")
    const database = unique("replay_db").replace(/-/g, "_")
    databases.push(database)
    // The replay reads the service's dead letters (--topic) and writes to topics and a database
    // of its own, so that what it writes is told apart from what the other tests' replays wrote.
    // One message per batch (PIPELINE__BATCH_SIZE=1): the replay takes many batches, and the
    // signal lands between them.
    const env = serviceEnv(
      { ...names, sink, dlq, database },
      { PIPELINE__FILE: relaxedPipeline(), PIPELINE__BATCH_SIZE: "1" },
    )
    const args = ["--topic", names.dlq, "--group", group, "--to", toFlag(serviceEnds)]
    const total = [...serviceEnds.values()].reduce((a, b) => a + b, 0)
    const committed = async () =>
      [...(await committedOffsets(group, names.dlq)).values()].reduce((a, b) => a + b, 0)

    const first = startService(env, ["replay", ...args])
    await waitFor("the replay's first commit", async () => (await committed()) > 0, 60_000, first.output)
    first.child.kill("SIGTERM")
    assert.strictEqual(await first.exited, 0, first.output())
    const stopped = summaryOf(first.output())
    assert.isFalse(stopped.complete, "stopped before the end of its range")
    assert.include(first.output(), "run the replay again to go on")
    const afterStop = await committed()
    assert.isBelow(afterStop, total, "the signal landed mid-way")

    const second = await replay(env, args)
    assert.strictEqual(second.code, 0, second.output)
    assert.isTrue(second.summary.complete)
    assert.strictEqual(stopped.read + second.summary.read, deadLetters.length, "every dead letter read once")
    assert.deepStrictEqual(await committedOffsets(group, names.dlq), serviceEnds)

    const written = await readTopic(sink)
    assert.deepStrictEqual(
      sorted(written.map((m) => m.key!)),
      sorted(relaxedKeys),
      "each relaxed record once",
    )
    assert.deepStrictEqual(sorted((await mongoDocuments(database)).map((d) => d._id)), sorted(relaxedKeys))
    const again = await readTopic(dlq)
    const from = again.map((m) => m.headers["pipeline.replay.from"]!)
    assert.strictEqual(new Set(from).size, from.length, "no dead letter replayed twice")
    assert.strictEqual(again.length, deadLetters.length - relaxedKeys.size, "none lost")
  })

  it("exactly_once: the replay's writes and its group's offsets go in transactions", async () => {
    const group = unique("exactly-once")
    const sink = unique("replay-eo-sink")
    const dlq = unique("replay-eo-dlq")
    const database = unique("replay_eo").replace(/-/g, "_")
    databases.push(database)
    // The test is about KAFKA__DELIVERY=exactly_once; topics and a database of its own as above.
    const env = serviceEnv(
      { ...names, sink, dlq, database },
      { PIPELINE__FILE: relaxedPipeline(), KAFKA__DELIVERY: "exactly_once" },
    )
    const run = await replay(env, ["--topic", names.dlq, "--group", group, "--to", toFlag(serviceEnds)])
    assert.strictEqual(run.code, 0, run.output)
    assert.strictEqual(run.summary.written, relaxedKeys.size)
    assert.deepStrictEqual(await committedOffsets(group, names.dlq), serviceEnds)
    const written = await readTopic(sink)
    assert.deepStrictEqual(sorted(written.map((m) => m.key!)), sorted(relaxedKeys))
    const again = await readTopic(dlq)
    assert.strictEqual(again.length, deadLetters.length - relaxedKeys.size)
    // A transaction's commit marker takes an offset: the topics hold more offsets than messages.
    const offsets = [...(await ends(dlq)).values()].reduce((a, b) => a + b, 0)
    assert.isAbove(offsets, again.length, "the dead letters were written in transactions")
  })
})
