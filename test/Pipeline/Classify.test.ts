/**
 * Where each record of a batch ends, as a table: valid, invalid (validation), duplicate, or
 * turned away by a sink (the stage of the first sink that did, every reason kept).
 */
import { assert, describe, it } from "@effect/vitest"
import type { KafkaMessage } from "kafkajs"
import { makeRecord, type PipelineRecord, type RecordStatus } from "../../src/Domain/Record.js"
import { classify, type Rejection } from "../../src/Pipeline/Classify.js"

const record = (offset: number, status: RecordStatus): PipelineRecord => ({
  ...makeRecord(String(offset), { id: offset }),
  status,
  reasons: status === "invalid" ? [{ task: "quality", rule: "NotNull", message: "missing" }] : [],
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
  const records = [
    record(0, "valid"),
    record(1, "invalid"),
    record(2, "duplicate"),
    record(3, "valid"),
    record(4, "valid"),
    record(5, "valid"),
  ]
  const rejections = [
    reject(records[3]!, "mongodb_sink", "depth"),
    reject(records[4]!, "kafka_sink", "size"),
    reject(records[5]!, "kafka_sink", "record_error"),
    reject(records[5]!, "mongodb_sink", "mongodb_error_2"),
  ]
  const out = classify(records, rejections, source)

  const table: ReadonlyArray<readonly [string, string | undefined, ReadonlyArray<string>]> = [
    ["0", undefined, []],
    ["1", "validation", ["NotNull"]],
    ["2", undefined, []],
    ["3", "mongodb_sink", ["depth"]],
    ["4", "kafka_sink", ["size"]],
    ["5", "kafka_sink", ["record_error", "mongodb_error_2"]],
  ]
  for (const [offset, stage, rules] of table) {
    it(`record ${offset}: ${stage ?? "no dead letter"}`, () => {
      const dead = out.deadLetters.find((d) => d.message.offset === offset)
      assert.strictEqual(dead?.stage, stage)
      assert.deepStrictEqual(dead?.reasons.map((r) => r.rule) ?? [], [...rules])
    })
  }

  it("counts every record once", () => {
    assert.deepInclude(out, { valid: 1, invalid: 1, duplicates: 1, rejectedBySink: 3 })
    assert.strictEqual(out.valid + out.duplicates + out.deadLetters.length, records.length)
  })
})
