import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Metric } from "effect"
import {
  fetchLag,
  type LagAdmin,
  type LagSnapshot,
  lagByPartition,
  localLag,
  refreshInterval,
  track,
} from "../../src/Observability/ConsumerLag.js"
import * as Metrics from "../../src/Observability/Metrics.js"
import { captureLogs, parseJsonLines } from "./support.js"

const watermarks = [
  { partition: 0, low: "0", high: "100" },
  { partition: 1, low: "40", high: "50" },
  { partition: 2, low: "500", high: "900" },
  { partition: 3, low: "7", high: "7" },
]

/** An admin client that answers from fixed offsets, or fails while `down` says so. */
const fakeAdmin = (committed: ReadonlyArray<{ partition: number; offset: string }>, down = () => false) => {
  const calls = { connect: 0, fetch: 0 }
  const admin: LagAdmin = {
    connect: async () => {
      calls.connect++
      if (down()) throw new Error("Connection error: connect ECONNREFUSED 127.0.0.1:9092")
    },
    fetchTopicOffsets: async (topic) => {
      calls.fetch++
      return topic === "orders" ? watermarks.map((w) => ({ ...w, offset: w.high })) : []
    },
    fetchOffsets: async ({ groupId }) =>
      groupId === "pipeline"
        ? [{ topic: "orders", partitions: committed.map((c) => ({ ...c, metadata: null })) }]
        : [],
  }
  return { admin, calls }
}

const asNumbers = (lag: ReadonlyMap<number, bigint>) =>
  Object.fromEntries([...lag].map(([p, n]) => [p, Number(n)]))

const lagGauge = (partition: number) =>
  Metric.value(Metric.withAttributes(Metrics.consumerLag, { partition: String(partition) })).pipe(
    Effect.map((state) => state.value),
  )

const waitUntil = (what: string, check: Effect.Effect<boolean>) =>
  Effect.gen(function* () {
    const deadline = Date.now() + 5_000
    while (!(yield* check)) {
      if (Date.now() > deadline) return yield* Effect.die(new Error(`timed out waiting for ${what}`))
      yield* Effect.sleep("10 millis")
    }
  })

describe("ConsumerLag", () => {
  it("is the high watermark minus the committed offset, per partition", () => {
    const committed = [
      { partition: 0, offset: "60" },
      { partition: 1, offset: "-1" }, // nothing committed yet
      { partition: 2, offset: "120" }, // behind the log start: retention removed the rest
      { partition: 3, offset: "7" },
    ]
    assert.deepStrictEqual(asNumbers(lagByPartition(watermarks, committed, "earliest")), {
      0: 40,
      1: 10,
      2: 400,
      3: 0,
    })
    // With `latest` the group skips what it has not committed: no lag there yet.
    assert.deepStrictEqual(asNumbers(lagByPartition(watermarks, committed, "latest")), {
      0: 40,
      1: 0,
      2: 0,
      3: 0,
    })
  })

  it("never reports a negative lag (a commit can be newer than the watermarks seen)", () => {
    assert.deepStrictEqual(
      asNumbers(
        lagByPartition(
          [{ partition: 0, low: "0", high: "10" }],
          [{ partition: 0, offset: "12" }],
          "earliest",
        ),
      ),
      { 0: 0 },
    )
    assert.deepStrictEqual(asNumbers(localLag(new Map([[4, { offset: "12", highWatermark: "10" }]]))), {
      4: 0,
    })
  })

  it("handles offsets beyond 2^53", () => {
    const lag = lagByPartition(
      [{ partition: 0, low: "0", high: "9007199254740999" }],
      [{ partition: 0, offset: "9007199254740990" }],
      "earliest",
    )
    assert.strictEqual(lag.get(0), 9n)
  })

  it("refreshes with the progress interval when it is short, every 15 s otherwise", () => {
    assert.strictEqual(Duration.toMillis(refreshInterval(Duration.seconds(5))), 5_000)
    assert.strictEqual(Duration.toMillis(refreshInterval(Duration.seconds(30))), 15_000)
    assert.strictEqual(Duration.toMillis(refreshInterval(Duration.zero)), 15_000)
  })

  it.effect("asks the broker for the topic's watermarks and the group's commits", () =>
    Effect.gen(function* () {
      const { admin } = fakeAdmin([{ partition: 0, offset: "90" }])
      const lag = yield* fetchLag(admin, "orders", "pipeline", "earliest")
      assert.deepStrictEqual(asNumbers(lag), { 0: 10, 1: 10, 2: 400, 3: 0 })
    }),
  )

  it.live(
    "updates pipeline_consumer_lag{partition}, and falls back to the local commits while the broker is away",
    () =>
      Effect.gen(function* () {
        let down = false
        const { admin, calls } = fakeAdmin(
          [
            { partition: 0, offset: "75" },
            { partition: 1, offset: "50" },
            { partition: 2, offset: "880" },
            { partition: 3, offset: "7" },
          ],
          () => down,
        )
        const local = new Map([[0, { offset: "99", highWatermark: "100" }]])
        const { result: snapshots, lines } = yield* captureLogs(
          Effect.gen(function* () {
            const latest = yield* track({
              admin,
              topic: "orders",
              group: "pipeline",
              reset: "earliest",
              every: Duration.millis(20),
              local: Effect.succeed(local),
            })
            const seen: Array<LagSnapshot> = []
            yield* waitUntil(
              "the first refresh",
              Effect.map(latest, (s) => s.source === "broker"),
            )
            seen.push(yield* latest)
            assert.strictEqual(yield* lagGauge(0), 25)
            assert.strictEqual(yield* lagGauge(2), 20)
            down = true
            yield* waitUntil(
              "the fallback",
              Effect.map(latest, (s) => s.source === "local"),
            )
            // Two more refreshes while down: still one warning.
            const attempts = calls.connect
            yield* waitUntil(
              "two more refreshes",
              Effect.sync(() => calls.connect >= attempts + 2),
            )
            seen.push(yield* latest)
            assert.strictEqual(yield* lagGauge(0), 1)
            down = false
            yield* waitUntil(
              "the recovery",
              Effect.map(latest, (s) => s.source === "broker"),
            )
            return seen
          }).pipe(Effect.scoped),
        )
        assert.strictEqual(snapshots[0]!.total, 45n)
        assert.deepStrictEqual(asNumbers(snapshots[1]!.byPartition), { 0: 1 })
        const logged = parseJsonLines(lines)
        const warnings = logged.filter((l) => l.level === "WARN")
        assert.strictEqual(warnings.length, 1)
        assert.include(String(warnings[0]!.message), "consumer lag")
        assert.include(String(warnings[0]!.annotations.error), "ECONNREFUSED")
        assert.isTrue(logged.some((l) => String(l.message).includes("answers again")))
      }),
  )
})
