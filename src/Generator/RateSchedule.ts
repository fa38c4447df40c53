/**
 * Rate control as a pure function of the clock. Record n is due at start + n / rate, so
 * the schedule is held against the wall clock: a slow write or a late timer is caught up on
 * the next step instead of drifting, and `sent` after t seconds stays within one batch of
 * rate * t.
 */

export type Step =
  | { readonly _tag: "Send"; readonly count: number }
  | { readonly _tag: "Wait"; readonly millis: number }
  | { readonly _tag: "Done" }

export interface RatePlan {
  /** Records per second; 0 = no limit. */
  readonly rate: number
  /** Undefined = unlimited. */
  readonly total: number | undefined
  /** Most records in one step. */
  readonly maxBatch: number
}

/** What to do at `now` (ms) after sending `sent` records since `start` (ms). */
export const nextStep = (plan: RatePlan, start: number, sent: number, now: number): Step => {
  const remaining = plan.total === undefined ? Number.POSITIVE_INFINITY : plan.total - sent
  if (remaining <= 0) return { _tag: "Done" }
  if (plan.rate === 0) return { _tag: "Send", count: Math.min(remaining, plan.maxBatch) }
  // The first record is due at `start`, record n at start + n * 1000 / rate.
  const due = Math.floor(((now - start) * plan.rate) / 1000) + 1
  const count = Math.min(remaining, plan.maxBatch, due - sent)
  if (count > 0) return { _tag: "Send", count }
  return { _tag: "Wait", millis: Math.max(1, Math.ceil(start + (sent * 1000) / plan.rate - now)) }
}
