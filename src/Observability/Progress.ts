/**
 * What the service tells an operator without a dashboard: a periodic one-line progress report
 * (records/s since the last line, totals, consumer lag, share of records turned away) and the
 * totals when it stops.
 */
import { Duration, Effect, type Scope } from "effect"
import type { LagSnapshot } from "./ConsumerLag.js"

export interface Totals {
  batches: number
  consumed: number
  valid: number
  invalid: number
  malformed: number
  duplicates: number
  filtered: number
  rejectedBySink: number
  failedBatch: number
  tombstonesApplied: number
  tombstonesIgnored: number
  deadLettered: number
}

export const emptyTotals = (): Totals => ({
  batches: 0,
  consumed: 0,
  valid: 0,
  invalid: 0,
  malformed: 0,
  duplicates: 0,
  filtered: 0,
  rejectedBySink: 0,
  failedBatch: 0,
  tombstonesApplied: 0,
  tombstonesIgnored: 0,
  deadLettered: 0,
})

/** What one batch adds to the totals. */
export type BatchCounts = Omit<Totals, "batches">

export const add = (totals: Totals, s: BatchCounts): void => {
  totals.batches++
  totals.consumed += s.consumed
  totals.valid += s.valid
  totals.invalid += s.invalid
  totals.malformed += s.malformed
  totals.duplicates += s.duplicates
  totals.filtered += s.filtered
  totals.rejectedBySink += s.rejectedBySink
  totals.failedBatch += s.failedBatch
  totals.tombstonesApplied += s.tombstonesApplied
  totals.tombstonesIgnored += s.tombstonesIgnored
  totals.deadLettered += s.deadLettered
}

const turnedAway = (t: Totals) => t.invalid + t.malformed + t.rejectedBySink + t.failedBatch

export const progressLine = (
  totals: Totals,
  recordsPerSecond: number,
  lag: LagSnapshot,
): { readonly message: string; readonly annotations: Record<string, unknown> } => ({
  message: `progress: ${recordsPerSecond.toFixed(1)} records/s, ${totals.consumed} consumed, lag ${lag.source === "none" ? "unknown" : lag.total}, invalid ratio ${(turnedAway(totals) / Math.max(1, totals.consumed)).toFixed(3)}`,
  annotations: {
    consumer_lag: Object.fromEntries([...lag.byPartition].map(([p, n]) => [String(p), Number(n)])),
    lag_source: lag.source,
  },
})

/** Logs a progress line every `every` (never when it is zero), in a fiber of the caller's scope. */
export const logProgress = (
  totals: Totals,
  lag: Effect.Effect<LagSnapshot>,
  every: Duration.Duration,
): Effect.Effect<void, never, Scope.Scope> =>
  Duration.toMillis(every) === 0
    ? Effect.void
    : Effect.gen(function* () {
        let last = { at: Date.now(), consumed: 0 }
        yield* Effect.gen(function* () {
          yield* Effect.sleep(every)
          const now = Date.now()
          const rate = ((totals.consumed - last.consumed) * 1000) / Math.max(1, now - last.at)
          const line = progressLine(totals, rate, yield* lag)
          yield* Effect.logInfo(line.message).pipe(Effect.annotateLogs(line.annotations))
          last = { at: now, consumed: totals.consumed }
        }).pipe(Effect.forever, Effect.forkScoped)
      })

export const logSummary = (totals: Totals, startedAt: number) =>
  Effect.logInfo("pipeline stopped").pipe(
    Effect.annotateLogs({ summary: { ...totals, seconds: Math.round((Date.now() - startedAt) / 1000) } }),
  )
