/**
 * Poison records at the documented defaults (batch size 500, the shipped pipeline), against
 * the real broker and FerretDB: one partition, ordinary records with each poison in the
 * middle. The partition must drain past every one of them: every ordinary record in MongoDB
 * and on the sink topic, every poison on the dead-letter topic with its stage, its reason and
 * its original bytes (cut to fit, with its length, when the dead-letter topic cannot take it).
 */
import { afterAll, assert, describe, it } from "@effect/vitest"
import { encode, generate } from "../../src/Generator/Records.js"
import {
  createTopic,
  defaultServiceEnv,
  drain,
  dropDatabase,
  freshNames,
  kafka,
  mongoIds,
  readTopic,
} from "./support/Service.js"

const databases: string[] = []
afterAll(async () => {
  for (const db of databases) await dropDatabase(db).catch(() => undefined)
})

/** `levels` arrays nested in each other, as JSON text ([[[...]]]); one level per array. */
const nested = (levels: number) => new RawJson(`${"[".repeat(levels)}${"]".repeat(levels)}`)

/** JSON text put into a value as it is (JSON.stringify itself would overflow on deep nesting). */
class RawJson {
  constructor(readonly text: string) {}
}

interface Poison {
  readonly name: string
  readonly value: Buffer
  /** Where it must end: the stage and rule of its dead letter, or `written` for records that must get through. */
  readonly expect: { readonly stage: string; readonly rule: string; readonly truncated?: boolean } | "written"
  readonly key: string
}

describe("poison records", () => {
  it("never stop a partition: each goes to the dead-letter topic with its stage and reason, the rest is written", async () => {
    const names = freshNames("poison")
    databases.push(names.database)
    await createTopic(names.source, 1)
    // The local broker takes record batches of up to 2 MiB; these topics take less than the
    // source (a common set-up), so that a record can be too large for them and not for the source.
    await createTopic(names.sink, 3, { "max.message.bytes": "1000000" })
    await createTopic(names.dlq, 3, { "max.message.bytes": "1000000" })
    const ordinary = [
      ...generate(
        {
          seed: 77,
          pattern: "mixed",
          invalidRatio: 0,
          duplicateRatio: 0,
          malformedRatio: 0,
          oversizedRatio: 0,
          oversizedBytes: 0,
          baseTime: Date.UTC(2026, 10, 27),
        },
        0,
        400,
      ),
    ]
    const base = (i: number, fields: Record<string, unknown>): Buffer => {
      const value = JSON.parse(encode(ordinary[i]!).toString()) as Record<string, unknown>
      const raw = new Map<string, string>()
      const text = JSON.stringify({ ...value, event_id: `poison-${i}`, ...fields }, (_key, v: unknown) => {
        if (!(v instanceof RawJson)) return v
        const mark = `@raw${raw.size}@`
        raw.set(mark, v.text)
        return mark
      })
      return Buffer.from([...raw].reduce((out, [mark, json]) => out.replace(`"${mark}"`, json), text))
    }
    const withTags = (i: number, tags: unknown) => base(i, { tags })
    const big = (i: number, bytes: number) => {
      const shell = withTags(i, [""])
      return withTags(i, ["x".repeat(bytes - shell.length)])
    }
    const poisons: Poison[] = [
      {
        name: "tags nested 4,500 levels",
        key: "poison-0",
        value: withTags(0, nested(4500)),
        expect: { stage: "mongodb_sink", rule: "depth" },
      },
      // The record itself is level 1, so tags of 99 levels make 100: the deepest MongoDB stores, so
      // it reaches the sinks; FerretDB's own limit is lower, and its refusal must isolate this record.
      {
        name: "nested 100 levels",
        key: "poison-1",
        value: withTags(1, nested(99)),
        expect: { stage: "mongodb_sink", rule: "mongodb_error_2" },
      },
      {
        name: "nested 101 levels",
        key: "poison-2",
        value: withTags(2, nested(100)),
        expect: { stage: "mongodb_sink", rule: "depth" },
      },
      {
        name: "NUL in a field name",
        key: "poison-3",
        value: withTags(3, [{ "a\u0000b": 1 }]),
        expect: { stage: "mongodb_sink", rule: "field_name" },
      },
      {
        name: "$ field name",
        key: "poison-4",
        value: withTags(4, [{ $where: 1 }]),
        expect: { stage: "mongodb_sink", rule: "field_name" },
      },
      {
        name: "key is an object",
        key: "poison-5",
        value: base(5, { event_id: { id: 5 } }),
        expect: { stage: "mongodb_sink", rule: "key" },
      },
      {
        name: "key is empty",
        key: "poison-6",
        value: base(6, { event_id: "" }),
        expect: { stage: "mongodb_sink", rule: "key" },
      },
      {
        name: "key too long",
        key: "poison-7",
        value: base(7, { event_id: "k".repeat(2000) }),
        expect: { stage: "mongodb_sink", rule: "key" },
      },
      { name: "700 KB #1", key: "poison-8", value: big(8, 700_000), expect: "written" },
      { name: "700 KB #2", key: "poison-9", value: big(9, 700_000), expect: "written" },
      { name: "700 KB #3", key: "poison-10", value: big(10, 700_000), expect: "written" },
      // Under the source limit (1 MiB), over what the sink topic takes: refused for the sink topic,
      // and with the dead-letter headers too large for the dead-letter topic: sent cut, with its length.
      {
        name: "1 MB record",
        key: "poison-11",
        value: big(11, 1_048_400),
        expect: { stage: "kafka_sink", rule: "size", truncated: true },
      },
      {
        name: "not JSON",
        key: "poison-12",
        value: Buffer.from('{"event_id": "poison-12", '),
        expect: { stage: "parse", rule: "json" },
      },
    ]
    // Two 64-bit ids that a JavaScript number cannot tell apart: they must stay two documents.
    const largeIds = ["12345678901234567891", "12345678901234567892"]
    const large = largeIds.map((id, i) =>
      Buffer.from(
        encode(ordinary[20 + i]!)
          .toString()
          .replace(/"event_id":"[^"]*"/, `"event_id":${id}`),
      ),
    )

    // Ordinary records around every poison, all in one partition, in this order.
    const messages: Array<{ key: string; value: Buffer }> = []
    let next = 30
    const ordinaryRun = (n: number) => {
      for (let i = 0; i < n; i++, next++)
        messages.push({ key: ordinary[next]!.key!, value: encode(ordinary[next]!) })
    }
    ordinaryRun(40)
    for (const p of poisons) {
      messages.push({ key: p.key, value: p.value })
      ordinaryRun(20)
    }
    for (const [i, value] of large.entries()) messages.push({ key: largeIds[i]!, value })
    ordinaryRun(60)

    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
    await producer.connect()
    try {
      // One message per request: a 1 MB message fills a request on its own.
      for (const m of messages) await producer.send({ topic: names.source, acks: -1, messages: [m] })
    } finally {
      await producer.disconnect()
    }

    const service = await drain(defaultServiceEnv(names), names, 180_000)
    assert.strictEqual(service.code, 0, service.output)

    const ordinaryKeys = ordinary.slice(30, next).map((r) => r.key!)
    const written = poisons.filter((p) => p.expect === "written").map((p) => p.key)
    const expectedIds = [...ordinaryKeys, ...written, ...largeIds].sort()
    assert.deepStrictEqual([...(await mongoIds(names.database))].sort(), expectedIds, "MongoDB")
    const sink = await readTopic(names.sink)
    // A record that the MongoDB server itself refuses while the sinks write in parallel has reached
    // the sink topic already: only limits known before writing keep a record from both sinks.
    assert.deepStrictEqual(
      [...new Set(sink.map((m) => m.key!))].sort(),
      [...expectedIds, "poison-1"].sort(),
      "sink topic",
    )

    const dlq = await readTopic(names.dlq)
    const dead = poisons.filter((p) => p.expect !== "written")
    assert.strictEqual(
      dlq.length,
      dead.length,
      dlq.map((m) => m.headers["pipeline.error.message"]).join("\n"),
    )
    for (const p of dead) {
      const expect = p.expect as Exclude<Poison["expect"], "written">
      const m = dlq.find((d) => d.key === p.key)
      assert.isDefined(m, `${p.name} is on the dead-letter topic`)
      const reasons = JSON.parse(m!.headers["pipeline.error.reasons"]!) as Array<{
        rule: string
        message: string
      }>
      assert.deepStrictEqual(
        [m!.headers["pipeline.error.stage"], reasons[0]?.rule],
        [expect.stage, expect.rule],
        `${p.name}: ${m!.headers["pipeline.error.message"]}`,
      )
      assert.isDefined(m!.headers["pipeline.source.offset"], p.name)
      if (expect.truncated === true) {
        assert.strictEqual(m!.headers["pipeline.error.truncated_from_bytes"], String(p.value.length), p.name)
        assert.isTrue(
          p.value.subarray(0, m!.value!.length).equals(m!.value!),
          `${p.name}: a prefix of the original`,
        )
      } else {
        assert.isTrue(m!.value!.equals(p.value), `${p.name}: the original bytes`)
      }
    }
  })
})
