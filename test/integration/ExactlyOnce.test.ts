/**
 * KAFKA__DELIVERY=exactly_once against the real broker and FerretDB: each batch's sink messages,
 * dead letters and consumed offset go in one Kafka transaction of its source partition's
 * producer, committed after MongoDB acknowledged. A read_committed reader sees every valid key
 * once and every dead letter once; the group's offsets come from the transactions. (The
 * SIGKILL and rebalance runs are in the fault suite.)
 */
import { afterAll, assert, describe, it } from "@effect/vitest"
import { defaultRecordOptions, generate } from "../../src/Generator/Records.js"
import { produceWithJava } from "../support/JavaProducer.js"
import {
  committedOffsets,
  createTopic,
  drain,
  dropDatabase,
  freshNames,
  groupCaughtUp,
  mongoIds,
  produce,
  readCommitted,
  serviceEnv,
  startService,
  summaryOf,
  topicSize,
  waitFor,
} from "./support/Service.js"

const databases: string[] = []
afterAll(async () => {
  for (const db of databases) await dropDatabase(db).catch(() => undefined)
})

/** The group's committed offset of partition 0 of `topic`, or undefined before its first commit. */
const committedOffset = async (group: string, topic: string): Promise<number | undefined> => {
  const offset = (await committedOffsets(group, topic)).get(0) ?? -1
  return offset < 0 ? undefined : offset
}

describe("exactly-once on the Kafka side", () => {
  it("writes each batch's sink messages, dead letters and offset in one transaction", async () => {
    const names = freshNames("eos")
    databases.push(names.database)
    await createTopic(names.source, 3)
    const records = [...generate({ ...defaultRecordOptions, seed: 515, malformedRatio: 0.02 }, 0, 1500)]
    await produce(names.source, records)
    // The delivery setting is what this test is about; every other setting is the default.
    const service = await drain(serviceEnv(names, { KAFKA__DELIVERY: "exactly_once" }), names)
    assert.strictEqual(service.code, 0, service.output)
    const valid = [...new Set(records.filter((r) => r.kind === "valid").map((r) => r.key!))].sort()
    assert.deepStrictEqual([...(await mongoIds(names.database))].sort(), valid)
    const sink = await readCommitted(names.sink)
    assert.deepStrictEqual(sink.map((m) => m.key!).sort(), valid, "each valid key once")
    // Each committed transaction leaves a marker in every partition it wrote to: offsets beyond the messages.
    assert.isAbove(await topicSize(names.sink), sink.length, "the sink messages were written in transactions")
    const dead = (await readCommitted(names.dlq)).map((m) => m.headers["x-index"]!)
    const expected = records
      .filter((r) => r.kind === "invalid" || r.kind === "malformed")
      .map((r) => String(r.index))
    assert.deepStrictEqual(dead.sort(), expected.sort(), "each dead letter once")
    assert.strictEqual(summaryOf(service.output)?.consumed, records.length)
  })

  it("holds when the partition's transactional id is fenced from outside while batches are in flight", async () => {
    const names = freshNames("eos-fenced")
    databases.push(names.database)
    await createTopic(names.source, 1)
    const records = [
      ...generate({ ...defaultRecordOptions, seed: 516, duplicateRatio: 0, malformedRatio: 0.02 }, 0, 24_000),
    ]
    // The delivery setting is what this test is about; every other setting is the default.
    const service = startService(serviceEnv(names, { KAFKA__DELIVERY: "exactly_once" }))
    const offsets: number[] = []
    let fencedWhileBusy = 0
    let watching = true
    const watcher = (async () => {
      while (watching) {
        const offset = await committedOffset(names.group, names.source).catch(() => undefined)
        if (offset !== undefined && offset !== offsets[offsets.length - 1]) offsets.push(offset)
        await new Promise((r) => setTimeout(r, 100))
      }
    })()
    try {
      for (let burst = 0; burst < 3; burst++) {
        const from = burst * 8000
        await produce(names.source, records.slice(from, from + 8000))
        // While the burst drains (the Java client takes a second or two to start), as when another
        // instance owned the partition in between or the broker expired a transaction: a producer of
        // the same transactional id starts, fencing this instance's with batches in flight.
        await produceWithJava({
          topic: names.sink,
          transactionalId: `${names.group}.${names.source}.0`,
          records: [],
        })
        await waitFor(
          "every offset committed",
          () => groupCaughtUp(names.group, names.source),
          120_000,
          service.output,
        )
      }
      fencedWhileBusy = service
        .output()
        .split("\n")
        .filter((l) => l.includes("given up")).length
      assert.strictEqual(await service.stop("SIGTERM"), 0, service.output())
    } finally {
      watching = false
      await watcher
      await service.stop("SIGKILL")
    }
    for (let i = 1; i < offsets.length; i++)
      assert.isAtLeast(offsets[i]!, offsets[i - 1]!, `the committed offset went back: ${offsets.join(" ")}`)
    // A read_committed reader of either topic sees every source record exactly once.
    const seen = [...(await readCommitted(names.sink)), ...(await readCommitted(names.dlq))].map(
      (m) => m.headers["pipeline.source.offset"]!,
    )
    const twice = seen.filter((offset, i) => seen.indexOf(offset) !== i)
    assert.deepStrictEqual(twice, [], "no source record twice")
    assert.strictEqual(new Set(seen).size, records.length, "every source record")
    // The fences met batches in flight (else this test would prove nothing).
    assert.isAbove(fencedWhileBusy, 0)
  }, 420_000)
})
