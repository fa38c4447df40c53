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
import type { PassedOver } from "../../src/Replay/Selection.js"
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
  topicSize,
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
  readonly passedOver: Record<PassedOver, number>
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
/** The dead-letter topic's end offsets once the service was done (its copies' too). */
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

/**
 * A dead-letter topic of the test's own holding the service's dead letters as they are, each in
 * its partition at its offset, with a sink topic and a database of its own: the replay ledger
 * keeps what any replay of a dead-letter topic did, so each test replays a topic of its own.
 */
const copyOfDeadLetters = async (prefix: string): Promise<Names> => {
  const dlq = unique(prefix)
  await createTopic(dlq, 3)
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
  await producer.connect()
  try {
    for (const partition of serviceEnds.keys()) {
      const messages = deadLetters.filter((m) => m.partition === partition)
      for (let i = 0; i < messages.length; i += 500)
        await producer.send({
          topic: dlq,
          acks: -1,
          messages: messages
            .slice(i, i + 500)
            .map((m) => ({ partition, key: m.key, value: m.value, headers: m.headers })),
        })
    }
  } finally {
    await producer.disconnect()
  }
  assert.deepStrictEqual(await ends(dlq), serviceEnds, "the copy has every dead letter at its offset")
  const database = dlq.replace(/-/g, "_")
  databases.push(database)
  return { ...names, dlq, sink: `${dlq}.clean`, database }
}

const group = () => `${names.group}.replay`
const ledgerOf = (copy: Names) => `${copy.dlq}.replayed`

describe("replay", () => {
  it("a relaxed rule: the dry run says what the replay does, the replay writes it as the service would, a second replay writes nothing", async () => {
    const copy = await copyOfDeadLetters("replay-relaxed")
    // The test is about a changed pipeline file: the relaxed copy.
    const env = serviceEnv(copy, { PIPELINE__FILE: relaxedPipeline() })

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
      `validation / quality.quantity [Range]: ${relaxedKeys.size} written`,
      "the counts by reason: every Range refusal written",
    )
    // Nothing written, nothing committed.
    assert.strictEqual((await readTopic(copy.dlq)).length, deadLetters.length)
    assert.strictEqual(await topicSize(copy.sink).catch(() => 0), 0)
    assert.strictEqual((await mongoDocuments(copy.database)).length, 0)
    assert.strictEqual(await topicSize(ledgerOf(copy)).catch(() => 0), 0)
    assert.deepStrictEqual(
      [...(await committedOffsets(group(), copy.dlq)).values()].filter((o) => o >= 0),
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
    const sink = await readTopic(copy.sink)
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
    const documents = await mongoDocuments(copy.database)
    assert.deepStrictEqual(sorted(documents.map((d) => d._id)), sorted(relaxedKeys))
    for (const d of documents) {
      const original = deadLetterOf.get(d._id)!
      assert.deepStrictEqual(d._kafka, {
        topic: names.source,
        partition: Number(original.headers["pipeline.source.partition"]),
        offset: Number(original.headers["pipeline.source.offset"]),
      })
    }
    // The others: back to the dead-letter topic once each, with a replay count and their source.
    const again = replayedFrom(await readTopic(copy.dlq))
    assert.strictEqual(again.length, live.summary.stillInvalid)
    assert.strictEqual(new Set(again.map((m) => m.headers["pipeline.replay.from"])).size, again.length)
    for (const m of again) {
      assert.strictEqual(m.headers["pipeline.replay.count"], "1")
      assert.strictEqual(m.headers["pipeline.source.topic"], names.source)
    }
    assert.deepStrictEqual(await committedOffsets(group(), copy.dlq), serviceEnds)
    // The ledger: every dead letter replayed, with what it became.
    const ledger = await readTopic(ledgerOf(copy))
    assert.strictEqual(new Set(ledger.map((m) => m.key)).size, deadLetters.length)
    const outcomes = ledger.map((m) => (JSON.parse(m.value!.toString()) as { outcome: string }).outcome)
    assert.strictEqual(outcomes.filter((o) => o === "written").length, relaxedKeys.size)

    const second = await replay(env)
    assert.strictEqual(second.code, 0, second.output)
    assert.strictEqual(second.summary.replayed, 0)
    assert.strictEqual(second.summary.read, again.length)
    assert.strictEqual(second.summary.passedOver.same_pipeline, again.length)
    assert.strictEqual(replayedFrom(await readTopic(copy.dlq)).length, again.length)
    assert.strictEqual((await readTopic(copy.sink)).length, relaxedKeys.size)
    assert.strictEqual((await mongoDocuments(copy.database)).length, relaxedKeys.size)
  })

  it("--reason and a time range select; what --reason leaves out, a later replay takes, and nothing twice", async () => {
    const copy = await copyOfDeadLetters("replay-selective")
    const env = serviceEnv(copy, { PIPELINE__FILE: relaxedPipeline() })
    const quantity = (m: ReadMessage) =>
      (m.headers["pipeline.error.reasons"] ?? "").includes('"field":"quantity"')

    const dry = await replay(env, [
      "--dry-run",
      "--reason",
      "quantity",
      "--reason",
      "json",
      "--from",
      "2000-01-01T00:00:00Z",
      "--to",
      new Date(Date.now() + 3_600_000).toISOString(),
    ])
    assert.strictEqual(dry.code, 0, dry.output)
    const matching = deadLetters.filter(
      (m) => quantity(m) || (m.headers["pipeline.error.reasons"] ?? "").includes('"rule":"json"'),
    )
    assert.isAbove(matching.length, relaxedKeys.size, "malformed messages and conversions are among them")
    assert.strictEqual(dry.summary.read, deadLetters.length)
    assert.strictEqual(dry.summary.replayed, matching.length)
    assert.strictEqual(dry.summary.passedOver.not_selected, deadLetters.length - matching.length)
    assert.strictEqual(dry.summary.written, relaxedKeys.size)

    const some = await replay(env, ["--reason", "quantity"])
    assert.strictEqual(some.code, 0, some.output)
    assert.strictEqual(some.summary.replayed, deadLetters.filter(quantity).length)
    assert.strictEqual(some.summary.written, relaxedKeys.size)
    // The group stays at each partition's first dead letter --reason left out.
    const held = await committedOffsets(group(), copy.dlq)
    for (const [partition, end] of serviceEnds) {
      const first = deadLetters.filter((m) => m.partition === partition).findIndex((m) => !quantity(m))
      assert.strictEqual(held.get(partition) ?? -1, first < 0 ? end : first)
    }

    const rest = await replay(env)
    assert.strictEqual(rest.code, 0, rest.output)
    assert.strictEqual(rest.summary.replayed, deadLetters.length - some.summary.replayed)
    assert.strictEqual(rest.summary.written, 0)
    assert.isAbove(rest.summary.passedOver.replayed, 0, "those the first replay took past the group's offset")
    assert.strictEqual(rest.summary.passedOver.same_pipeline, some.summary.stillInvalid)

    // Every dead letter replayed once: the relaxed ones written, the others dead-lettered again.
    assert.deepStrictEqual(sorted((await readTopic(copy.sink)).map((m) => m.key!)), sorted(relaxedKeys))
    const again = replayedFrom(await readTopic(copy.dlq))
    assert.strictEqual(new Set(again.map((m) => m.headers["pipeline.replay.from"])).size, again.length)
    assert.strictEqual(again.length, deadLetters.length - relaxedKeys.size)
    assert.strictEqual(new Set((await readTopic(ledgerOf(copy))).map((m) => m.key)).size, deadLetters.length)

    const nothing = await replay(env)
    assert.strictEqual(nothing.code, 0, nothing.output)
    assert.strictEqual(nothing.summary.replayed, 0)
  })

  it("stopped by SIGTERM and run again: nothing lost, nothing doubled", async () => {
    const copy = await copyOfDeadLetters("replay-stopped")
    // One message per batch (PIPELINE__BATCH_SIZE=1): the replay takes many batches, and the
    // signal lands between them.
    const env = serviceEnv(copy, { PIPELINE__FILE: relaxedPipeline(), PIPELINE__BATCH_SIZE: "1" })
    const total = [...serviceEnds.values()].reduce((a, b) => a + b, 0)
    const committed = async () =>
      [...(await committedOffsets(group(), copy.dlq)).values()].reduce((a, b) => a + Math.max(0, b), 0)

    const first = startService(env, ["replay"])
    await waitFor("the replay's first commit", async () => (await committed()) > 0, 60_000, first.output)
    first.child.kill("SIGTERM")
    assert.strictEqual(await first.exited, 0, first.output())
    const stopped = summaryOf(first.output())
    assert.isFalse(stopped.complete, "stopped before the end of its range")
    assert.include(first.output(), "run the replay again to go on")
    assert.isBelow(await committed(), total, "the signal landed mid-way")

    // Only the dead letters the service wrote (--to): not those the first run wrote again.
    const second = await replay(env, ["--to", toFlag(serviceEnds)])
    assert.strictEqual(second.code, 0, second.output)
    assert.isTrue(second.summary.complete)
    assert.strictEqual(stopped.read + second.summary.read, deadLetters.length, "every dead letter read once")
    assert.strictEqual(stopped.replayed + second.summary.replayed, deadLetters.length)
    assert.deepStrictEqual(await committedOffsets(group(), copy.dlq), serviceEnds)

    const written = await readTopic(copy.sink)
    assert.deepStrictEqual(
      sorted(written.map((m) => m.key!)),
      sorted(relaxedKeys),
      "each relaxed record once",
    )
    assert.deepStrictEqual(
      sorted((await mongoDocuments(copy.database)).map((d) => d._id)),
      sorted(relaxedKeys),
    )
    const again = replayedFrom(await readTopic(copy.dlq))
    const from = again.map((m) => m.headers["pipeline.replay.from"]!)
    assert.strictEqual(new Set(from).size, from.length, "no dead letter replayed twice")
    assert.strictEqual(again.length, deadLetters.length - relaxedKeys.size, "none lost")
  })

  it("exactly_once: the replay's writes, its ledger and its group's offsets go in transactions", async () => {
    const copy = await copyOfDeadLetters("replay-exactly-once")
    // The test is about KAFKA__DELIVERY=exactly_once.
    const env = serviceEnv(copy, { PIPELINE__FILE: relaxedPipeline(), KAFKA__DELIVERY: "exactly_once" })
    const run = await replay(env)
    assert.strictEqual(run.code, 0, run.output)
    assert.strictEqual(run.summary.written, relaxedKeys.size)
    assert.deepStrictEqual(await committedOffsets(group(), copy.dlq), serviceEnds)
    const written = await readTopic(copy.sink)
    assert.deepStrictEqual(sorted(written.map((m) => m.key!)), sorted(relaxedKeys))
    const again = replayedFrom(await readTopic(copy.dlq))
    assert.strictEqual(again.length, deadLetters.length - relaxedKeys.size)
    const ledger = await readTopic(ledgerOf(copy))
    assert.strictEqual(new Set(ledger.map((m) => m.key)).size, deadLetters.length)
    // A transaction's commit marker takes an offset: the topics hold more offsets than messages.
    const offsets = [...(await ends(ledgerOf(copy))).values()].reduce((a, b) => a + b, 0)
    assert.isAbove(offsets, ledger.length, "the ledger was written in transactions")
    const sinkOffsets = [...(await ends(copy.sink)).values()].reduce((a, b) => a + b, 0)
    assert.isAbove(sinkOffsets, written.length, "the sink topic too")
  })
})
