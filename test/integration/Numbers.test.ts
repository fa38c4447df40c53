/**
 * Numbers JSON text holds and a double does not (1e400 parses to Infinity), and text that is
 * not well-formed UTF-16 (an unpaired surrogate, "\ud800"), against the real broker and
 * FerretDB at the service's defaults and the shipped pipeline. MongoDB would store Infinity
 * and U+FFFD, the sink topic's JSON `null` and the escape: so a record that still holds one
 * when it reaches the sinks goes to the dead-letter topic before either sink writes (rules
 * `number` and `text`), and is in neither. What the shipped pipeline sees first is handled
 * there: an overflowing amount fails its type conversion (stage validation), and fields the
 * mapping drops take their defect with them (the record is written).
 */
import { afterAll, assert, describe, it } from "@effect/vitest"
import { encode, generate } from "../../src/Generator/Records.js"
import {
  createTopic,
  defaultServiceEnv,
  drain,
  dropDatabase,
  freshNames,
  groupCaughtUp,
  kafka,
  readTopic,
  withMongo,
} from "./support/Service.js"

const databases: string[] = []
afterAll(async () => {
  for (const db of databases) await dropDatabase(db).catch(() => undefined)
})

/** A number as JSON text holds it, put into a message as it is (JSON.stringify would write null). */
class RawNumber {
  constructor(readonly text: string) {}
}

interface Case {
  readonly name: string
  /** The Kafka key the message is produced with (the event_id, unless the defect is in it). */
  readonly key: string
  readonly value: Buffer
  /** Its dead letter's stage, rule and field, or `written` for a record that must reach both sinks. */
  readonly expect: { readonly stage: string; readonly rule: string; readonly field?: string } | "written"
}

describe("numbers a double cannot hold, and unpaired surrogates", () => {
  it("are dead-lettered before either sink writes; the sinks never disagree about a record", async () => {
    const names = freshNames("numbers")
    databases.push(names.database)
    await createTopic(names.source, 3)
    const generated = [
      ...generate(
        {
          seed: 4242,
          pattern: "valid",
          invalidRatio: 0,
          duplicateRatio: 0,
          malformedRatio: 0,
          oversizedRatio: 0,
          oversizedBytes: 0,
          baseTime: Date.UTC(2026, 10, 27),
        },
        0,
        60,
      ),
    ]
    /**
     * Record `i` of the generated ones with its event_id and `changes` applied (a field set to
     * `undefined` goes); RawNumber values are written as their text. String escapes such as
     * "\ud800" are what JSON.stringify writes for an unpaired surrogate, so the bytes hold them.
     */
    const build = (
      i: number,
      eventId: unknown,
      changes: (value: Record<string, unknown>) => void,
    ): Buffer => {
      const value = JSON.parse(encode(generated[i]!).toString()) as Record<string, unknown>
      value.event_id = eventId
      changes(value)
      const raw: string[] = []
      const text = JSON.stringify(value, (_key, v: unknown) => {
        if (!(v instanceof RawNumber)) return v
        raw.push(v.text)
        return `@raw${raw.length - 1}@`
      })
      return Buffer.from(raw.reduce((out, number, n) => out.replace(`"@raw${n}@"`, number), text))
    }
    const customer = (value: Record<string, unknown>) => value.customer as Record<string, unknown>
    const order = (value: Record<string, unknown>) => value.order as Record<string, unknown>

    const cases: Case[] = [
      {
        // The shipped pipeline converts amount to a float: the conversion refuses it first.
        name: "amount 1e400",
        key: "numbers-amount",
        value: build(0, "numbers-amount", (v) => {
          order(v).amount = new RawNumber("1e400")
        }),
        expect: { stage: "validation", rule: "float", field: "amount" },
      },
      {
        name: "event_id -1e400 (the key would be the text -Infinity)",
        key: "numbers-key",
        value: build(1, new RawNumber("-1e400"), () => undefined),
        expect: { stage: "mongodb_sink", rule: "number", field: "event_id" },
      },
      {
        // tags is kept as it is; its Type rule only warns.
        name: "tags 1e400",
        key: "numbers-tags",
        value: build(2, "numbers-tags", (v) => {
          v.tags = new RawNumber("1e400")
        }),
        expect: { stage: "mongodb_sink", rule: "number", field: "tags" },
      },
      {
        name: "1e999 nested in arrays",
        key: "numbers-nested",
        value: build(3, "numbers-nested", (v) => {
          v.tags = ["gift", [1, new RawNumber("1e999")]]
        }),
        expect: { stage: "mongodb_sink", rule: "number", field: "tags[1][1]" },
      },
      {
        // first_name is mapped and title-cased; the surrogate survives both.
        name: "an unpaired surrogate in first_name",
        key: "numbers-first-name",
        value: build(4, "numbers-first-name", (v) => {
          customer(v).first_name = "jo\ud800"
        }),
        expect: { stage: "mongodb_sink", rule: "text", field: "first_name" },
      },
      {
        name: "an unpaired surrogate in an array",
        key: "numbers-tag-text",
        value: build(5, "numbers-tag-text", (v) => {
          v.tags = ["gift", "\udc00"]
        }),
        expect: { stage: "mongodb_sink", rule: "text", field: "tags[1]" },
      },
      {
        name: "an unpaired surrogate in a field name",
        key: "numbers-name",
        value: build(6, "numbers-name", (v) => {
          v.tags = [{ "\ud800": "x" }]
        }),
        expect: { stage: "mongodb_sink", rule: "text", field: 'tags[0]."\\ud800"' },
      },
      {
        // The shipped mapping drops unmapped fields: the defects go with them.
        name: "1e400 and an unpaired surrogate in fields the mapping drops",
        key: "numbers-dropped",
        value: build(7, "numbers-dropped", (v) => {
          v.extra = new RawNumber("1e400")
          v["\ud800"] = "x"
        }),
        expect: "written",
      },
      {
        name: "well-formed astral characters, raw and escaped",
        key: "numbers-emoji",
        value: build(8, "numbers-emoji", (v) => {
          customer(v).first_name = "zoë 😀"
          v.tags = ["😀", "\ud83d\ude00"]
        }),
        expect: "written",
      },
    ]
    assert.include(cases[0]!.value.toString(), '"amount":1e400')
    assert.include(cases[6]!.value.toString(), '{"\\ud800":"x"}')

    // Ordinary records before, between and after the cases.
    const ordinary = generated.slice(10)
    const messages: Array<{ key: string; value: Buffer }> = []
    let next = 0
    const ordinaryRun = (n: number) => {
      for (const r of ordinary.slice(next, next + n)) messages.push({ key: r.key!, value: encode(r) })
      next += n
    }
    ordinaryRun(10)
    for (const c of cases) {
      messages.push({ key: c.key, value: c.value })
      ordinaryRun(4)
    }
    ordinaryRun(ordinary.length - next)

    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
    await producer.connect()
    try {
      await producer.send({ topic: names.source, acks: -1, messages })
    } finally {
      await producer.disconnect()
    }

    // Returns once the group has committed every offset of the source topic.
    const service = await drain(defaultServiceEnv(names), names)
    assert.strictEqual(service.code, 0, service.output)
    assert.isTrue(await groupCaughtUp(names.group, names.source), "committed to the end")

    const written = [
      ...ordinary.map((r) => r.key!),
      ...cases.filter((c) => c.expect === "written").map((c) => c.key),
    ]
    const documents = await withMongo((client) =>
      client
        .db(names.database)
        .collection<{ _id: string; [field: string]: unknown }>("orders")
        .find({})
        .toArray(),
    )
    assert.deepStrictEqual(documents.map((d) => d._id).sort(), [...written].sort(), "MongoDB")
    const sink = await readTopic(names.sink)
    assert.deepStrictEqual(sink.map((m) => m.key!).sort(), [...written].sort(), "sink topic, each once")

    // What both sinks store of the written cases is the same.
    const sinkValue = (key: string) =>
      JSON.parse(sink.find((m) => m.key === key)!.value!.toString()) as Record<string, unknown>
    const dropped = documents.find((d) => d._id === "numbers-dropped")!
    assert.notProperty(dropped, "extra")
    assert.notProperty(sinkValue("numbers-dropped"), "extra")
    const emoji = documents.find((d) => d._id === "numbers-emoji")!
    assert.strictEqual(emoji.first_name, "Zoë 😀")
    assert.deepStrictEqual(emoji.tags, ["😀", "😀"])
    assert.deepInclude(sinkValue("numbers-emoji"), { first_name: "Zoë 😀", tags: ["😀", "😀"] })

    const dlq = await readTopic(names.dlq)
    const dead = cases.filter((c) => c.expect !== "written")
    assert.deepStrictEqual(
      dlq.map((m) => m.key!).sort(),
      dead.map((c) => c.key).sort(),
      dlq.map((m) => m.headers["pipeline.error.message"]).join("\n"),
    )
    for (const c of dead) {
      const expect = c.expect as Exclude<Case["expect"], "written">
      const m = dlq.find((d) => d.key === c.key)!
      const reasons = JSON.parse(m.headers["pipeline.error.reasons"]!) as Array<{
        task: string
        field?: string
        rule: string
        message: string
      }>
      assert.deepStrictEqual(
        [m.headers["pipeline.error.stage"], reasons[0]?.rule, reasons[0]?.field],
        [expect.stage, expect.rule, expect.field],
        `${c.name}: ${m.headers["pipeline.error.reasons"]}`,
      )
      assert.lengthOf(reasons, 1, c.name)
      assert.isTrue(m.value!.equals(c.value), `${c.name}: the original bytes`)
      assert.isDefined(m.headers["pipeline.source.offset"], c.name)
      if (expect.rule === "number")
        assert.include(reasons[0]!.message, "is a number that cannot be stored as a double", c.name)
      if (expect.rule === "text") assert.include(reasons[0]!.message, "not well-formed UTF-16", c.name)
      if (expect.rule === "float") assert.include(reasons[0]!.message, "it overflows to Infinity", c.name)
    }
  })
})
