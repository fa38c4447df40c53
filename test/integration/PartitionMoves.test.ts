/**
 * KAFKA__DELIVERY=exactly_once while partitions move to another instance and back, against the
 * real broker and FerretDB. Instance A drains a first burst alone; instance B joins (A's
 * partitions are shared out) for a second burst; B stops and its partitions come back to A for
 * a third. The generator's stream carries duplicates (same key, a later message) whose first
 * copy is often in an earlier burst, drained by the other instance. A read_committed reader then
 * sees every valid key once on the sink topic, every dead letter once, and the group's committed
 * offsets never went back: the instance that takes a partition fences its transactional id,
 * reads the committed offset after the fence, and reads the partition's duplicate window back.
 */
import { afterAll, assert, describe, it } from "@effect/vitest"
import { defaultRecordOptions, generate } from "../../src/Generator/Records.js"
import {
  committedOffsets,
  createTopic,
  dropDatabase,
  freshNames,
  groupCaughtUp,
  kafka,
  mongoIds,
  produce,
  readCommitted,
  serviceEnv,
  startService,
  summaryOf,
  waitFor,
} from "./support/Service.js"

const databases: string[] = []
afterAll(async () => {
  for (const db of databases) await dropDatabase(db).catch(() => undefined)
})

const members = async (group: string): Promise<number> => {
  const admin = kafka.admin()
  await admin.connect()
  try {
    const { groups } = await admin.describeGroups([group])
    return groups[0]?.state === "Stable" ? groups[0].members.length : -1
  } finally {
    await admin.disconnect()
  }
}

describe("exactly-once while partitions move", () => {
  it("a partition that moves to another instance and back: every record once, offsets never back", async () => {
    const names = freshNames("eos-moves")
    databases.push(names.database)
    await createTopic(names.source, 3)
    const records = [...generate({ ...defaultRecordOptions, seed: 6061, duplicateRatio: 0.2 }, 0, 4_500)]
    const bursts = [records.slice(0, 1500), records.slice(1500, 3000), records.slice(3000)]
    // The delivery setting is what this test is about; every other setting is the default.
    const env = serviceEnv(names, { KAFKA__DELIVERY: "exactly_once" })
    const history = new Map<number, number[]>()
    let watching = true
    const watcher = (async () => {
      while (watching) {
        const offsets = await committedOffsets(names.group, names.source).catch(
          () => new Map<number, number>(),
        )
        for (const [partition, offset] of offsets) {
          const seen = history.get(partition) ?? []
          if (offset >= 0 && offset !== seen[seen.length - 1]) history.set(partition, [...seen, offset])
        }
        await new Promise((r) => setTimeout(r, 100))
      }
    })()
    const a = startService(env)
    let b: ReturnType<typeof startService> | undefined
    const caughtUp = (what: string) =>
      waitFor(
        what,
        () => groupCaughtUp(names.group, names.source),
        120_000,
        () => `${a.output()}\n${b?.output()}`,
      )
    try {
      await produce(names.source, bursts[0]!)
      await caughtUp("A to drain the first burst")

      b = startService(env)
      await waitFor("both instances in the group", async () => (await members(names.group)) === 2, 90_000)
      await produce(names.source, bursts[1]!)
      await caughtUp("A and B to drain the second burst")
      assert.strictEqual(await b.stop("SIGTERM"), 0, b.output())
      assert.isAbove(summaryOf(b.output())?.consumed ?? 0, 0, "B took partitions and worked on them")

      await waitFor("A alone in the group again", async () => (await members(names.group)) === 1, 90_000)
      await produce(names.source, bursts[2]!)
      await caughtUp("A to drain the third burst, on every partition again")
      assert.strictEqual(await a.stop("SIGTERM"), 0, a.output())
    } finally {
      watching = false
      await watcher
      await Promise.all([a.stop("SIGKILL"), b?.stop("SIGKILL")])
    }

    for (const [partition, offsets] of history) {
      for (let i = 1; i < offsets.length; i++)
        assert.isAtLeast(
          offsets[i]!,
          offsets[i - 1]!,
          `partition ${partition}: the committed offset went back: ${offsets.join(" ")}`,
        )
    }
    const valid = [...new Set(records.filter((r) => r.kind === "valid").map((r) => r.key!))].sort()
    const sink = (await readCommitted(names.sink)).map((m) => m.key!).sort()
    assert.deepStrictEqual(
      sink,
      valid,
      "every valid key once on the sink topic (duplicates removed as in one process)",
    )
    assert.deepStrictEqual([...(await mongoIds(names.database))].sort(), valid)
    const dead = (await readCommitted(names.dlq)).map((m) => m.headers["x-index"]!).sort()
    const expected = records
      .filter((r) => r.kind === "invalid" || r.kind === "malformed")
      .map((r) => String(r.index))
      .sort()
    assert.deepStrictEqual(dead, expected, "every dead letter once")
  }, 420_000)
})
