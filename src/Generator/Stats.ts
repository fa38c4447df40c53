/**
 * What the generator has delivered, counted only once the output acknowledged it, and the
 * progress and summary text built from it (stderr, so stdout stays clean JSON lines).
 */
import { type Defect, RECORD_DEFECTS, type RecordDefect } from "./Defects.js"
import type { GeneratedRecord } from "./Records.js"

export interface Stats {
  sent: number
  valid: number
  invalid: number
  invalidByDefect: Record<RecordDefect, number>
  duplicates: number
  malformed: number
  oversized: number
  /** The messages of a Debezium change stream, by op; tombstones are messages of their own. */
  creates: number
  updates: number
  deletes: number
  tombstones: number
  /** Messages the output refused. */
  errors: number
  /** From the first send to the last acknowledgement (or the stop). */
  elapsedMillis: number
}

export const emptyStats = (): Stats => ({
  sent: 0,
  valid: 0,
  invalid: 0,
  invalidByDefect: {
    missing_required_field: 0,
    wrong_type: 0,
    out_of_range: 0,
    bad_pattern: 0,
    bad_date: 0,
    bad_enum: 0,
  },
  duplicates: 0,
  malformed: 0,
  oversized: 0,
  creates: 0,
  updates: 0,
  deletes: 0,
  tombstones: 0,
  errors: 0,
  elapsedMillis: 0,
})

const isRecordDefect = (d: Defect | undefined): d is RecordDefect =>
  d !== undefined && (RECORD_DEFECTS as ReadonlyArray<string>).includes(d)

export const countDelivered = (stats: Stats, records: ReadonlyArray<GeneratedRecord>): void => {
  for (const r of records) {
    stats.sent++
    switch (r.kind) {
      case "valid":
        stats.valid++
        break
      case "invalid":
        stats.invalid++
        if (isRecordDefect(r.defect)) stats.invalidByDefect[r.defect]++
        break
      case "duplicate":
        stats.duplicates++
        break
      case "malformed":
        stats.malformed++
        break
      case "oversized":
        stats.oversized++
        break
      case "create":
        stats.creates++
        break
      case "update":
        stats.updates++
        break
      case "delete":
        stats.deletes++
        break
      case "tombstone":
        stats.tombstones++
    }
  }
}

const perSecond = (n: number, millis: number): string =>
  millis <= 0 ? "-" : (n / (millis / 1000)).toFixed(1)

export const progressLine = (stats: Stats): string =>
  `generate: ${stats.sent} sent, ${perSecond(stats.sent, stats.elapsedMillis)} rec/s, ${stats.errors} errors, ${(stats.elapsedMillis / 1000).toFixed(1)} s`

export const summary = (stats: Stats, seed: number): string => {
  const elapsedMillis = stats.elapsedMillis
  const defects = RECORD_DEFECTS.map((d) => `${d} ${stats.invalidByDefect[d]}`).join(", ")
  const head = `generate: done, ${stats.sent} messages in ${(elapsedMillis / 1000).toFixed(2)} s (${perSecond(stats.sent, elapsedMillis)} msg/s), seed ${seed}`
  if (stats.creates + stats.updates + stats.deletes + stats.tombstones > 0)
    return [
      head,
      `  creates     ${stats.creates}`,
      `  updates     ${stats.updates}`,
      `  deletes     ${stats.deletes}`,
      `  tombstones  ${stats.tombstones}`,
      `  errors      ${stats.errors}`,
    ].join("\n")
  return [
    head,
    `  valid       ${stats.valid}`,
    `  invalid     ${stats.invalid} (${defects})`,
    `  duplicates  ${stats.duplicates}`,
    `  malformed   ${stats.malformed}`,
    `  oversized   ${stats.oversized}`,
    `  errors      ${stats.errors}`,
  ].join("\n")
}
