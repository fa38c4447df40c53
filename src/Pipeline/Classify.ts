/**
 * Where each record of a batch ends, decided once the sinks have settled: valid (in both
 * sinks), invalid (the dead-letter topic, stage `validation`), a duplicate (counted), or
 * turned away by a sink (the dead-letter topic, with the stage of the sink that turned it away
 * first and every reason). A pure function of the records and the rejections.
 */
import type { KafkaMessage } from "kafkajs"
import type { PipelineRecord, Reason } from "../Domain/Record.js"
import type { Stage } from "../Kafka/Messages.js"
import type { SinkStage } from "./Sinks.js"

/** A message on its way to the dead-letter topic, and why. */
export interface DeadLetter {
  readonly message: KafkaMessage
  readonly stage: Stage
  readonly reasons: ReadonlyArray<Reason>
}

/** A record a sink turned away (a limit before writing, or the server while writing). */
export interface Rejection {
  readonly record: PipelineRecord
  readonly stage: SinkStage
  readonly reason: Reason
}

export interface Classified {
  readonly valid: number
  readonly invalid: number
  readonly duplicates: number
  readonly rejectedBySink: number
  readonly deadLetters: ReadonlyArray<DeadLetter>
}

export const classify = (
  records: ReadonlyArray<PipelineRecord>,
  rejections: ReadonlyArray<Rejection>,
  sourceOf: (record: PipelineRecord) => KafkaMessage,
): Classified => {
  const byOffset = new Map<string, Rejection[]>()
  for (const r of rejections) {
    const list = byOffset.get(r.record.offset)
    if (list === undefined) byOffset.set(r.record.offset, [r])
    else list.push(r)
  }
  const deadLetters: DeadLetter[] = []
  let valid = 0
  let invalid = 0
  let duplicates = 0
  let rejectedBySink = 0
  for (const record of records) {
    if (record.status === "invalid") {
      invalid++
      deadLetters.push({ message: sourceOf(record), stage: "validation", reasons: record.reasons })
    } else if (record.status === "duplicate") {
      duplicates++
    } else {
      const turnedAway = byOffset.get(record.offset)
      if (turnedAway === undefined) {
        valid++
      } else {
        rejectedBySink++
        deadLetters.push({
          message: sourceOf(record),
          stage: turnedAway[0]!.stage,
          reasons: turnedAway.map((r) => r.reason),
        })
      }
    }
  }
  return { valid, invalid, duplicates, rejectedBySink, deadLetters }
}
