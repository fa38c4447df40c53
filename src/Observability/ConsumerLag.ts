/**
 * Consumer lag per partition, asked of the broker: the source topic's high watermarks against
 * the consumer group's committed offsets. That is the group's lag, the same whichever instance
 * asks, so it stays right while partitions move between instances. When the broker does not
 * answer, the offsets this instance committed (and the watermarks seen with them) stand in.
 */
import { Data, Duration, Effect, Metric, Ref, Schedule, type Scope } from "effect"
import type { Admin } from "kafkajs"
import * as Metrics from "./Metrics.js"

export type LagAdmin = Pick<Admin, "connect" | "fetchTopicOffsets" | "fetchOffsets">

export interface Watermarks {
  readonly partition: number
  readonly high: string
  readonly low: string
}

export interface CommittedOffset {
  readonly partition: number
  /** "-1" when the group has committed nothing for the partition. */
  readonly offset: string
}

export interface LagSnapshot {
  readonly byPartition: ReadonlyMap<number, bigint>
  readonly total: bigint
  /** "broker" when fresh from the admin client; "local" from this instance's own commits. */
  readonly source: "broker" | "local" | "none"
}

export class ConsumerLagError extends Data.TaggedError("ConsumerLagError")<{ readonly cause: unknown }> {
  override get message() {
    return `cannot read the consumer lag from the broker: ${this.cause instanceof Error ? this.cause.message : String(this.cause)}`
  }
}

const atLeastZero = (n: bigint) => (n > 0n ? n : 0n)

/**
 * Records the group has yet to read, per partition. Without a usable commit (none yet, or one
 * that retention has passed) the group starts where KAFKA__AUTO_OFFSET_RESET says.
 */
export const lagByPartition = (
  watermarks: ReadonlyArray<Watermarks>,
  committed: ReadonlyArray<CommittedOffset>,
  reset: "earliest" | "latest",
): ReadonlyMap<number, bigint> => {
  const offsets = new Map(committed.map((c) => [c.partition, BigInt(c.offset)]))
  const lag = new Map<number, bigint>()
  for (const w of watermarks) {
    const high = BigInt(w.high)
    const low = BigInt(w.low)
    const offset = offsets.get(w.partition) ?? -1n
    const start = offset >= 0n && offset >= low ? offset : reset === "earliest" ? low : high
    lag.set(w.partition, atLeastZero(high - start))
  }
  return lag
}

export const snapshotOf = (byPartition: ReadonlyMap<number, bigint>, source: LagSnapshot["source"]) => {
  let total = 0n
  for (const n of byPartition.values()) total += n
  return { byPartition, total, source } satisfies LagSnapshot
}

export const fetchLag = (
  admin: LagAdmin,
  topic: string,
  group: string,
  reset: "earliest" | "latest",
): Effect.Effect<ReadonlyMap<number, bigint>, ConsumerLagError> =>
  Effect.tryPromise({
    try: async () => {
      // Cheap when already connected; reconnects after the broker came back.
      await admin.connect()
      const [watermarks, groupOffsets] = await Promise.all([
        admin.fetchTopicOffsets(topic),
        admin.fetchOffsets({ groupId: group, topics: [topic] }),
      ])
      const committed = groupOffsets.find((t) => t.topic === topic)?.partitions ?? []
      return lagByPartition(watermarks, committed, reset)
    },
    catch: (cause) => new ConsumerLagError({ cause }),
  }).pipe(
    Effect.timeoutOrElse({
      duration: "10 seconds",
      orElse: () => Effect.fail(new ConsumerLagError({ cause: "no answer within 10 seconds" })),
    }),
  )

/** Lag from this instance's own commits: only the partitions it has committed since it started. */
export const localLag = (
  committed: ReadonlyMap<number, { readonly offset: string; readonly highWatermark: string }>,
): ReadonlyMap<number, bigint> =>
  new Map([...committed].map(([p, c]) => [p, atLeastZero(BigInt(c.highWatermark) - BigInt(c.offset))]))

/** The progress interval when it is short enough to keep the gauge fresh, 15 s otherwise. */
export const refreshInterval = (progressInterval: Duration.Duration): Duration.Duration => {
  const fixed = Duration.seconds(15)
  return Duration.toMillis(progressInterval) === 0 || Duration.isGreaterThan(progressInterval, fixed)
    ? fixed
    : progressInterval
}

export interface TrackOptions {
  readonly admin: LagAdmin
  readonly topic: string
  readonly group: string
  readonly reset: "earliest" | "latest"
  readonly every: Duration.Duration
  readonly local: Effect.Effect<
    ReadonlyMap<number, { readonly offset: string; readonly highWatermark: string }>
  >
}

/**
 * Refreshes the lag now and then every `every`, in a fiber of the caller's scope, and updates
 * `pipeline_consumer_lag{partition}`. Returns the latest snapshot, for the progress line.
 */
export const track = (options: TrackOptions): Effect.Effect<Effect.Effect<LagSnapshot>, never, Scope.Scope> =>
  Effect.gen(function* () {
    const latest = yield* Ref.make<LagSnapshot>(snapshotOf(new Map(), "none"))
    // Warn once per outage, not on every refresh while the broker is away.
    let failing = false
    const refresh = Effect.gen(function* () {
      const fetched = yield* Effect.result(
        fetchLag(options.admin, options.topic, options.group, options.reset),
      )
      let snapshot: LagSnapshot
      if (fetched._tag === "Success") {
        if (failing) yield* Effect.logInfo("consumer lag: the broker answers again")
        failing = false
        snapshot = snapshotOf(fetched.success, "broker")
      } else {
        if (!failing) {
          yield* Effect.logWarning(
            "consumer lag: the broker did not answer; reporting the lag this instance last saw",
          ).pipe(Effect.annotateLogs({ error: fetched.failure.message }))
        }
        failing = true
        snapshot = snapshotOf(localLag(yield* options.local), "local")
      }
      for (const [partition, lag] of snapshot.byPartition) {
        yield* Metric.update(
          Metric.withAttributes(Metrics.consumerLag, { partition: String(partition) }),
          Number(lag),
        )
      }
      yield* Ref.set(latest, snapshot)
    })
    yield* refresh.pipe(Effect.repeat(Schedule.spaced(options.every)), Effect.forkScoped)
    return Ref.get(latest)
  })
