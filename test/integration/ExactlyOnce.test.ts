/**
 * KAFKA__DELIVERY=exactly_once against the real broker and FerretDB: each batch's sink messages,
 * dead letters and consumed offset go in one Kafka transaction of its source partition's
 * producer, committed after MongoDB acknowledged. A read_committed reader sees every valid key
 * once and every dead letter once; the group's offsets come from the transactions. (The
 * SIGKILL and rebalance runs are in the fault suite.)
 */
import { afterAll, assert, describe, it } from "@effect/vitest"
import { defaultRecordOptions, generate } from "../../src/Generator/Records.js"
import {
  createTopic,
  drain,
  dropDatabase,
  freshNames,
  mongoIds,
  produce,
  readCommitted,
  serviceEnv,
  summaryOf,
  topicSize,
} from "./support/Service.js"

const databases: string[] = []
afterAll(async () => {
  for (const db of databases) await dropDatabase(db).catch(() => undefined)
})

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
})
