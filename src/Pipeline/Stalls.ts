/**
 * Which partitions are stalled, since when and why, and how old each partition's oldest
 * batch in flight is. The processor writes it; the readiness check, the gauges and the logs
 * read it. A partition is stalled from the first write of its batch that failed with a
 * transient error until that batch is written. A batch in flight for longer than the stall
 * timeout with no failure noted (a call held open without an answer) is a slow batch: logged
 * and reported by /readyz like a stall.
 */
import { Clock, Context, Duration, Effect, Layer, Metric } from "effect"
import type { Undecodable } from "../Kafka/KafkaSource.js"
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

/** A batch in flight for longer than it should be, with no failure noted (a call that never answers). */
export interface SlowBatch {
  readonly partition: number
  readonly offsets: string
  /** Unix ms of the batch's start. */
  readonly since: number
}

interface Started {
  readonly at: number
  readonly offsets: string
}

export class PartitionStalls {
  private readonly stalls = new Map<number, Stall>()
  private readonly started = new Map<number, Array<Started>>()

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

  /** Forgets the stalls of partitions this instance no longer owns (they moved in a rebalance). */
  keepOnly(assigned: ReadonlyArray<number>): Effect.Effect<void> {
    return Effect.forEach(
      [...this.stalls.keys()].filter((partition) => !assigned.includes(partition)),
      (partition) => this.clear(partition),
      { discard: true },
    )
  }

  batchStarted(partition: number, at: number, offsets: string): void {
    const list = this.started.get(partition)
    if (list === undefined) this.started.set(partition, [{ at, offsets }])
    else list.push({ at, offsets })
  }

  batchEnded(partition: number, at: number, offsets: string): void {
    const list = this.started.get(partition)
    if (list === undefined) return
    const i = list.findIndex((s) => s.at === at && s.offsets === offsets)
    if (i >= 0) list.splice(i, 1)
    if (list.length === 0) this.started.delete(partition)
  }

  get current(): ReadonlyArray<Stall> {
    return [...this.stalls.values()]
  }

  /** Age in ms of each partition's oldest batch in flight. */
  oldestBatchAge(now: number): ReadonlyMap<number, number> {
    const ages = new Map<number, number>()
    for (const [partition, list] of this.started) {
      const oldest = oldestOf(list)
      if (oldest !== undefined) ages.set(partition, now - oldest.at)
    }
    return ages
  }

  /**
   * Per partition not stalled, its oldest batch when it has been in flight for longer than
   * `afterMs`: a write that neither succeeds nor fails (a server that holds the call open).
   */
  slowBatches(afterMs: number, now: number): ReadonlyArray<SlowBatch> {
    const slow: SlowBatch[] = []
    for (const [partition, list] of this.started) {
      const oldest = oldestOf(list)
      if (oldest !== undefined && now - oldest.at > afterMs && !this.stalls.has(partition))
        slow.push({ partition, offsets: oldest.offsets, since: oldest.at })
    }
    return slow
  }

  /** Partitions stalled for longer than `afterMs`. */
  stalledLongerThan(afterMs: number, now: number): ReadonlyArray<Stall> {
    return this.current.filter((s) => now - s.since > afterMs)
  }
}

const oldestOf = (list: ReadonlyArray<Started>): Started | undefined => {
  let oldest: Started | undefined
  for (const s of list) if (oldest === undefined || s.at < oldest.at) oldest = s
  return oldest
}

/**
 * A record batch that cannot be decoded stalls its partition at that offset: noted as a stall
 * (gauge, /readyz after the stall timeout), a WARNING naming topic, partition, offset and why,
 * and the wait before the same offset is fetched again (doubling from `baseDelay` to `maxDelay`).
 */
export const stallUndecodable =
  (
    stalls: PartitionStalls,
    delays: { readonly baseDelay: Duration.Duration; readonly maxDelay: Duration.Duration },
  ) =>
  (batch: Undecodable): Effect.Effect<Duration.Duration> =>
    Effect.gen(function* () {
      const stall = yield* stalls.note({
        partition: batch.partition,
        since: yield* Clock.currentTimeMillis,
        offsets: batch.offset,
        what: "decoding a fetched record batch",
        error: batch.reason,
      })
      const wait = Duration.min(
        delays.maxDelay,
        Duration.times(
          Duration.max(delays.baseDelay, Duration.millis(100)),
          2 ** Math.min(stall.retries - 1, 20),
        ),
      )
      yield* Effect.logWarning(
        "stalled: a record batch of this partition cannot be decoded; nothing after it is handed over or committed until it can be",
      ).pipe(
        Effect.annotateLogs({
          topic: batch.topic,
          partition: batch.partition,
          offset: batch.offset,
          error: batch.reason,
          stalled_seconds: Math.round((Date.now() - stall.since) / 1000),
          retries: stall.retries,
          next_try_seconds: Duration.toSeconds(wait),
        }),
      )
      return wait
    })

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

/**
 * Logs a WARNING for each slow batch (in flight for longer than `afterMs`, no failure noted),
 * once per `afterMs` it stays in flight. Run it every second or so.
 */
export const warnSlowBatches = (stalls: PartitionStalls, afterMs: number) => {
  // The multiple of `afterMs` last logged, per batch.
  const logged = new Map<string, number>()
  return Effect.flatMap(Clock.currentTimeMillis, (now) => {
    const slow = stalls.slowBatches(afterMs, now)
    const current = new Set<string>()
    return Effect.forEach(
      slow,
      (batch) => {
        const key = `${batch.partition}:${batch.offsets}:${batch.since}`
        current.add(key)
        const periods = Math.floor((now - batch.since) / Math.max(afterMs, 1))
        if (logged.get(key) === periods) return Effect.void
        logged.set(key, periods)
        return Effect.logWarning(
          "a batch has been in flight for longer than the stall timeout without an answer from its writes; its offsets stay uncommitted",
        ).pipe(
          Effect.annotateLogs({
            partition: batch.partition,
            offsets: batch.offsets,
            in_flight_seconds: Math.round((now - batch.since) / 1000),
          }),
        )
      },
      { discard: true },
    ).pipe(
      Effect.tap(() =>
        Effect.sync(() => {
          for (const key of logged.keys()) if (!current.has(key)) logged.delete(key)
        }),
      ),
    )
  })
}
