/**
 * Which partitions are stalled, since when and why, and how old each partition's oldest
 * batch in flight is. The processor writes it; the readiness check, the gauges and the logs
 * read it. A partition is stalled from the first write of its batch that failed with a
 * transient error until that batch is written.
 */
import { Context, Effect, Layer, Metric } from "effect"
import * as Metrics from "../Observability/Metrics.js"

export interface Stall {
  readonly partition: number
  /** Unix ms of the batch's first failed write. */
  readonly since: number
  readonly offsets: string
  /** What keeps failing: "the mongodb sink", "the dead-letter topic". */
  readonly what: string
  /** The last error, as its message says it. */
  readonly error: string
  readonly retries: number
}

export class PartitionStalls {
  private readonly stalls = new Map<number, Stall>()
  private readonly started = new Map<number, Array<number>>()

  note(stall: Omit<Stall, "retries">): Effect.Effect<Stall> {
    return Effect.suspend(() => {
      const before = this.stalls.get(stall.partition)
      const next: Stall = {
        ...stall,
        since: Math.min(stall.since, before?.since ?? stall.since),
        retries: (before?.retries ?? 0) + 1,
      }
      this.stalls.set(stall.partition, next)
      return Metric.update(
        Metric.withAttributes(Metrics.partitionStalled, { partition: String(stall.partition) }),
        1,
      ).pipe(Effect.andThen(Metric.update(Metrics.stalled, 1)), Effect.as(next))
    })
  }

  clear(partition: number): Effect.Effect<void> {
    return Effect.suspend(() => {
      if (!this.stalls.delete(partition)) return Effect.void
      return Metric.update(
        Metric.withAttributes(Metrics.partitionStalled, { partition: String(partition) }),
        0,
      ).pipe(Effect.andThen(Metric.update(Metrics.stalled, this.stalls.size > 0 ? 1 : 0)))
    })
  }

  batchStarted(partition: number, at: number): void {
    const list = this.started.get(partition)
    if (list === undefined) this.started.set(partition, [at])
    else list.push(at)
  }

  batchEnded(partition: number, at: number): void {
    const list = this.started.get(partition)
    if (list === undefined) return
    const i = list.indexOf(at)
    if (i >= 0) list.splice(i, 1)
    if (list.length === 0) this.started.delete(partition)
  }

  get current(): ReadonlyArray<Stall> {
    return [...this.stalls.values()]
  }

  /** Age in ms of each partition's oldest batch in flight. */
  oldestBatchAge(now: number): ReadonlyMap<number, number> {
    const ages = new Map<number, number>()
    for (const [partition, list] of this.started)
      if (list.length > 0) ages.set(partition, now - Math.min(...list))
    return ages
  }

  /** Partitions stalled for longer than `afterMs`. */
  stalledLongerThan(afterMs: number, now: number): ReadonlyArray<Stall> {
    return this.current.filter((s) => now - s.since > afterMs)
  }
}

export class Stalls extends Context.Service<Stalls, PartitionStalls>()("pipeline/Stalls") {
  static readonly layer = Layer.sync(Stalls, () => new PartitionStalls())
}

/** Keeps the per-partition age gauge current; partitions with nothing in flight read 0. */
export const trackBatchAges = (stalls: PartitionStalls) => {
  const shown = new Set<number>()
  return Effect.gen(function* () {
    const ages = stalls.oldestBatchAge(Date.now())
    for (const partition of new Set([...shown, ...ages.keys()])) {
      shown.add(partition)
      yield* Metric.update(
        Metric.withAttributes(Metrics.oldestBatchAge, { partition: String(partition) }),
        (ages.get(partition) ?? 0) / 1000,
      )
    }
  })
}
