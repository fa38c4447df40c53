/**
 * Summary statistics for repeated measurements: median with its spread, and nearest-rank
 * percentiles for latency samples.
 */

export interface Summary {
  readonly median: number
  readonly min: number
  readonly max: number
  /** (max - min) / median, as a fraction; 0 for a single sample. */
  readonly spread: number
  readonly samples: ReadonlyArray<number>
}

export const median = (values: ReadonlyArray<number>): number => {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const middle = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}

export const summarize = (samples: ReadonlyArray<number>): Summary => {
  const m = median(samples)
  const min = Math.min(...samples)
  const max = Math.max(...samples)
  return { median: m, min, max, spread: samples.length > 1 && m !== 0 ? (max - min) / m : 0, samples }
}

export interface Percentiles {
  readonly count: number
  readonly p50: number
  readonly p95: number
  readonly p99: number
  readonly max: number
  readonly mean: number
}

/** Nearest-rank percentiles of a sample (sorted here; the input is left alone). */
export const percentiles = (values: ReadonlyArray<number>): Percentiles => {
  const sorted = Float64Array.from(values).sort()
  const rank = (p: number) =>
    sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!
  let sum = 0
  for (const v of sorted) sum += v
  return sorted.length === 0
    ? { count: 0, p50: Number.NaN, p95: Number.NaN, p99: Number.NaN, max: Number.NaN, mean: Number.NaN }
    : {
        count: sorted.length,
        p50: rank(0.5),
        p95: rank(0.95),
        p99: rank(0.99),
        max: sorted[sorted.length - 1]!,
        mean: sum / sorted.length,
      }
}
