/**
 * One batch as the DAG sees it: where it came from (with its correlation id) and its records.
 * Messages that are not records (malformed) never enter the DAG; the processor sends them to
 * the dead-letter topic straight from the parse. And what became of a batch, counted.
 */
import type { PipelineRecord } from "../Domain/Record.js"
import type { BatchOrigin } from "./Messages.js"

export interface ParsedBatch {
  readonly origin: BatchOrigin
  readonly records: ReadonlyArray<PipelineRecord>
}

/** What happened to one batch; every consumed message is counted exactly once. */
export interface BatchSummary {
  readonly correlationId: string
  readonly consumed: number
  readonly valid: number
  readonly invalid: number
  readonly malformed: number
  readonly duplicates: number
  /** No sink's branch carries them (a filter stopped them on every branch that leads to a sink). */
  readonly filtered: number
  readonly rejectedBySink: number
  readonly failedBatch: number
  /** Tombstones applied to the sinks (MONGODB__ON_TOMBSTONE=delete): MongoDB deleted the key, the sink topic carries it. */
  readonly tombstonesApplied: number
  /** Tombstones counted and skipped (MONGODB__ON_TOMBSTONE=ignore). */
  readonly tombstonesIgnored: number
  readonly deadLettered: number
  readonly written: Readonly<Record<string, number>>
}
