/**
 * Where each record of a batch ends, as a table: invalid on any branch (validation), turned
 * away by a sink (the stage of the first sink that did, every reason kept), valid where some
 * sink reads it, a duplicate, or filtered (no sink's branch carries it).
 */
import { assert, describe, it } from "@effect/vitest"
import type { KafkaMessage } from "kafkajs"
import { makeRecord, type PipelineRecord, type RecordStatus } from "../../src/Domain/Record.js"
import { classify, type Rejection } from "../../src/Pipeline/Classify.js"

const record = (offset: number, status: RecordStatus, rule = "NotNull"): PipelineRecord => ({
  ...makeRecord(String(offset), { id: offset }),
  status,
  reasons: status === "invalid" ? [{ task: "quality", rule, message: "missing" }] : [],
})

const source = (r: PipelineRecord): KafkaMessage =>
  ({
    offset: r.offset,
    key: null,
    value: Buffer.from(r.offset),
    timestamp: "0",
    attributes: 0,
    headers: {},
  }) as KafkaMessage

const reject = (r: PipelineRecord, stage: Rejection["stage"], rule: string): Rejection => ({
  record: r,
  stage,
  reason: { task: stage === "mongodb_sink" ? "mongodb" : "kafka", rule, message: rule },
})

describe("classify", () => {
  // Two branches: the chain's end (read by MongoDB) and a filtered branch (read by the sink topic);
  // a validation branch beside them invalidates record 7 alone.
  const statuses: ReadonlyArray<readonly [RecordStatus, RecordStatus, RecordStatus]> = [
    // [chain end, filtered branch, validation branch]
    ["valid", "valid", "valid"], // 0
    ["invalid", "invalid", "valid"], // 1
    ["duplicate", "duplicate", "valid"], // 2
    ["valid", "valid", "valid"], // 3
    ["valid", "valid", "valid"], // 4
    ["valid", "valid", "valid"], // 5
    ["valid", "filtered", "valid"], // 6: MongoDB only
    ["valid", "valid", "invalid"], // 7: invalid on a branch no sink reads
    ["filtered", "filtered", "valid"], // 8
    ["duplicate", "filtered", "valid"], // 9
  ]
  const batch = statuses.map((_, i) => record(i, "valid"))
  const version = (k: 0 | 1 | 2) =>
    statuses.map(([...s], i) => record(i, s[k]!, k === 2 ? "Range" : "NotNull"))
  const [chainEnd, filteredBranch, validation] = [version(0), version(1), version(2)]
  const rejections = [
    reject(chainEnd[3]!, "mongodb_sink", "depth"),
    reject(chainEnd[4]!, "kafka_sink", "size"),
    reject(chainEnd[5]!, "kafka_sink", "record_error"),
    reject(chainEnd[5]!, "mongodb_sink", "mongodb_error_2"),
  ]
  const out = classify(
    batch,
    { transforms: [chainEnd, filteredBranch, validation], sinks: [chainEnd, filteredBranch] },
    rejections,
    source,
  )

  const table: ReadonlyArray<readonly [string, string | undefined, ReadonlyArray<string>]> = [
    ["0", undefined, []],
    ["1", "validation", ["NotNull"]],
    ["2", undefined, []],
    ["3", "mongodb_sink", ["depth"]],
    ["4", "kafka_sink", ["size"]],
    ["5", "kafka_sink", ["record_error", "mongodb_error_2"]],
    ["6", undefined, []],
    ["7", "validation", ["Range"]],
    ["8", undefined, []],
    ["9", undefined, []],
  ]
  for (const [offset, stage, rules] of table) {
    it(`record ${offset}: ${stage ?? "no dead letter"}`, () => {
      const dead = out.deadLetters.find((d) => d.message.offset === offset)
      assert.strictEqual(dead?.stage, stage)
      assert.deepStrictEqual(dead?.reasons.map((r) => r.rule) ?? [], [...rules])
    })
  }

  it("counts every record once: valid where a sink reads it, then duplicate, then filtered", () => {
    assert.deepStrictEqual(
      { valid: out.valid, invalid: out.invalid, duplicates: out.duplicates, filtered: out.filtered },
      // valid: 0 and 6; invalid: 1 and 7; duplicates: 2 and 9; filtered: 8
      { valid: 2, invalid: 2, duplicates: 2, filtered: 1 },
    )
    assert.strictEqual(out.rejectedBySink, 3)
    assert.strictEqual(out.valid + out.duplicates + out.filtered + out.deadLetters.length, batch.length)
  })

  it("keeps every reason of every branch once", () => {
    const both = record(0, "invalid")
    const other = { ...record(0, "invalid", "Range") }
    const twice = classify(
      [record(0, "valid")],
      { transforms: [[both], [other], [both]], sinks: [[both]] },
      [],
      source,
    )
    assert.deepStrictEqual(
      twice.deadLetters[0]?.reasons.map((r) => r.rule),
      ["NotNull", "Range"],
    )
  })
})
