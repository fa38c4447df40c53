/**
 * Where each record of a batch ends, decided once the sinks have settled, in this order:
 * - invalid on any branch: the dead-letter topic, stage `validation`, every reason of every
 *   branch;
 * - turned away by a sink (a limit before writing, or the server while writing): the
 *   dead-letter topic, with the stage of the sink that turned it away first and every reason;
 * - valid where some sink reads it: valid (written by the sinks whose branch carries it);
 * - a duplicate where a sink reads it: counted as a duplicate;
 * - otherwise no sink's branch carries it: counted as filtered.
 * A pure function of the versions of the records and the rejections.
 */
import type { KafkaMessage } from "kafkajs"
import type { PipelineRecord, Reason } from "../Domain/Record.js"
import { unionReasons } from "./Merge.js"
import type { Stage } from "./Messages.js"
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
  readonly filtered: number
  readonly rejectedBySink: number
  readonly deadLetters: ReadonlyArray<DeadLetter>
}

/** The records as each transform passed them on, and as each sink read them; all in batch order. */
export interface Versions {
  readonly transforms: ReadonlyArray<ReadonlyArray<PipelineRecord>>
  readonly sinks: ReadonlyArray<ReadonlyArray<PipelineRecord>>
}

export const classify = (
  records: ReadonlyArray<PipelineRecord>,
  versions: Versions,
  rejections: ReadonlyArray<Rejection>,
  /** The source message of a record, by the record and its index in `records`. */
  sourceOf: (record: PipelineRecord, index: number) => KafkaMessage,
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
  let filtered = 0
  let rejectedBySink = 0
  for (let i = 0; i < records.length; i++) {
    const record = records[i]!
    let reasons: ReadonlyArray<Reason> | undefined
    for (const version of versions.transforms) {
      const v = version[i]!
      // A record invalid early passes the later tasks untouched: the same reasons, nothing to add.
      if (v.status === "invalid")
        reasons = reasons === undefined ? v.reasons : unionReasons(reasons, v.reasons)
    }
    if (reasons !== undefined) {
      invalid++
      deadLetters.push({ message: sourceOf(record, i), stage: "validation", reasons })
      continue
    }
    // Most batches have no rejection: no lookup then.
    const turnedAway = byOffset.size === 0 ? undefined : byOffset.get(record.offset)
    if (turnedAway !== undefined) {
      rejectedBySink++
      deadLetters.push({
        message: sourceOf(record, i),
        stage: turnedAway[0]!.stage,
        reasons: turnedAway.map((r) => r.reason),
      })
      continue
    }
    let status: "valid" | "duplicate" | "filtered" = "filtered"
    for (const input of versions.sinks) {
      const s = input[i]!.status
      if (s === "valid") {
        status = s
        break
      }
      if (s === "duplicate") status = s
    }
    if (status === "valid") valid++
    else if (status === "duplicate") duplicates++
    else filtered++
  }
  return { valid, invalid, duplicates, filtered, rejectedBySink, deadLetters }
}
