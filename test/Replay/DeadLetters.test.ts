import { assert, describe, it } from "@effect/vitest"
import type { IHeaders, KafkaMessage, Message } from "kafkajs"
import type { Reason } from "../../src/Domain/Record.js"
import { deadLetterMessage, header } from "../../src/Pipeline/Messages.js"
import { describeDeadLetter, originalOf, positionIn, replayHeader, stamp } from "../../src/Replay/Headers.js"
import { decide, hasReason, type Selection } from "../../src/Replay/Selection.js"

const original: KafkaMessage = {
  key: Buffer.from("evt-1"),
  value: Buffer.from('{"event_id":"evt-1","quantity":0}'),
  timestamp: "1796000000000",
  attributes: 0,
  offset: "41",
  headers: { "x-defect": "out_of_range", traceparent: [Buffer.from("a"), Buffer.from("b")] },
}

const quantity: Reason = {
  task: "quality",
  field: "quantity",
  rule: "Range",
  message: "quantity 0 is below 1",
}

/** A dead letter as the service writes it, read back from the dead-letter topic at `offset`. */
const asRead = (message: Message, offset: string): KafkaMessage => ({
  key: message.key === undefined || message.key === null ? null : Buffer.from(message.key),
  value: message.value === undefined || message.value === null ? null : Buffer.from(message.value),
  timestamp: "1796000009999",
  attributes: 0,
  offset,
  headers: (message.headers ?? {}) as IHeaders,
})

const deadLetter = (
  reasons: ReadonlyArray<Reason>,
  stage: "validation" | "parse" = "validation",
  maxBytes?: number,
) =>
  asRead(
    deadLetterMessage(
      { correlationId: "orders-2-40-45", topic: "orders", partition: 2 },
      original,
      stage,
      reasons,
      new Date(0),
      maxBytes,
    ),
    "7",
  )

const selection: Selection = { reasons: [], keys: [], maxReplays: 3, fingerprint: "f1", replayed: new Set() }

describe("a dead letter, read back", () => {
  it("says its stage, its reasons, where the original was read and when", () => {
    const info = describeDeadLetter(deadLetter([quantity]))
    assert.strictEqual(info.stage, "validation")
    assert.deepStrictEqual(info.reasons, [quantity])
    assert.deepStrictEqual(info.source, { topic: "orders", partition: 2, offset: "41" })
    assert.strictEqual(info.sourceTimestamp, "1796000000000")
    assert.strictEqual(info.replays, 0)
    assert.isFalse(info.truncated)
  })

  it("gives the original back: its key, bytes, headers and timestamp, without the pipeline's headers", () => {
    const letter = deadLetter([quantity])
    const back = originalOf(letter, describeDeadLetter(letter))
    assert.deepStrictEqual(back.key, original.key)
    assert.deepStrictEqual(back.value, original.value)
    assert.deepStrictEqual(back.headers, original.headers)
    assert.strictEqual(back.timestamp, original.timestamp)
    assert.strictEqual(
      back.offset,
      "7",
      "the dead letter's offset: how the processor tells the batch's messages apart",
    )
  })

  it("one cut to fit its topic does not hold the original whole", () => {
    const letter = deadLetter([quantity], "validation", 400)
    assert.isDefined(letter.headers?.[header.truncatedFrom])
    assert.isTrue(describeDeadLetter(letter).truncated)
    assert.deepStrictEqual(decide(selection, letter, "1/7"), {
      _tag: "PassedOver",
      why: "truncated",
      info: describeDeadLetter(letter),
    })
  })
})

describe("what a replay writes", () => {
  it("carries the original's source coordinates and the replay's headers", () => {
    const written: Message = {
      key: "evt-1",
      value: "{}",
      headers: {
        [header.sourceTopic]: "orders.dlq",
        [header.sourcePartition]: "1",
        [header.sourceOffset]: "7",
        x: "y",
      },
    }
    assert.strictEqual(positionIn(written), "1/7")
    const stamped = stamp(written, {
      source: { topic: "orders", partition: 2, offset: "41" },
      count: 2,
      from: "orders.dlq/1/7",
      pipeline: "f1",
    })
    assert.deepStrictEqual(stamped.headers, {
      [header.sourceTopic]: "orders",
      [header.sourcePartition]: "2",
      [header.sourceOffset]: "41",
      x: "y",
      [replayHeader.count]: "2",
      [replayHeader.from]: "orders.dlq/1/7",
      [replayHeader.pipeline]: "f1",
    })
  })
})

describe("which dead letters are replayed", () => {
  it("--reason matches a stage, a rule, an error kind, a task, a field or task.field, whatever the case", () => {
    const info = describeDeadLetter(
      deadLetter([quantity, { task: "mongodb", rule: "record_error", message: "refused" }]),
    )
    for (const wanted of [
      "validation",
      "range",
      "Range",
      "quality",
      "quantity",
      "quality.quantity",
      "quality.Range",
      "record",
      "record_error",
      "mongodb",
    ])
      assert.isTrue(hasReason(info, wanted), wanted)
    for (const wanted of ["parse", "NotNull", "amount", "quality.amount", "error"])
      assert.isFalse(hasReason(info, wanted), wanted)
  })

  it("selects by reason and key; passes over what is no dead letter", () => {
    const letter = deadLetter([quantity])
    assert.strictEqual(decide(selection, letter, "1/7")._tag, "Replay")
    assert.strictEqual(decide({ ...selection, reasons: ["json", "quantity"] }, letter, "1/7")._tag, "Replay")
    assert.deepInclude(decide({ ...selection, reasons: ["json"] }, letter, "1/7"), { why: "not_selected" })
    assert.strictEqual(decide({ ...selection, keys: ["evt-1"] }, letter, "1/7")._tag, "Replay")
    assert.deepInclude(decide({ ...selection, keys: ["evt-2"] }, letter, "1/7"), { why: "not_selected" })
    assert.deepInclude(decide(selection, original, "1/7"), { why: "not_dead_letter" })
  })

  it("passes over what the ledger says was replayed, whatever the flags", () => {
    const letter = deadLetter([quantity])
    const ledger = { ...selection, replayed: new Set(["1/7"]) }
    assert.deepInclude(decide(ledger, letter, "1/7"), { why: "replayed" })
    assert.deepInclude(decide({ ...ledger, reasons: ["json"] }, letter, "1/7"), { why: "replayed" })
    assert.strictEqual(decide(ledger, letter, "1/8")._tag, "Replay")
  })

  it("never replays in a loop: the replay count's limit, and nothing again with the pipeline that wrote it", () => {
    const replayedOnce = (count: number, pipeline: string): KafkaMessage => {
      const letter = deadLetter([quantity])
      return asRead(
        {
          key: letter.key,
          value: letter.value,
          headers: {
            ...letter.headers,
            [replayHeader.count]: String(count),
            [replayHeader.pipeline]: pipeline,
          },
        },
        letter.offset,
      )
    }
    assert.strictEqual(decide(selection, replayedOnce(2, "f0"), "1/7")._tag, "Replay")
    assert.deepInclude(decide(selection, replayedOnce(3, "f0"), "1/7"), { why: "over_limit" })
    assert.deepInclude(decide(selection, replayedOnce(1, "f1"), "1/7"), { why: "same_pipeline" })
    assert.strictEqual(describeDeadLetter(replayedOnce(2, "f0")).replays, 2)
  })
})
