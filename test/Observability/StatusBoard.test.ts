/**
 * The status page's counters: totals since start, the last minute as the tally minus its copy
 * of a minute ago, the throughput of the last 15 minutes from the once-a-second copies, and
 * the dead-letter reasons counted by stage, task and rule with the fields they named.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { decodeSettings } from "../../src/Config/AppConfig.js"
import type { PipelineSpec } from "../../src/Config/PipelineSpec.js"
import { snapshotOf as lagSnapshot } from "../../src/Observability/ConsumerLag.js"
import { Board, Ring } from "../../src/Observability/Status/Board.js"
import { type Observed, snapshotOf } from "../../src/Observability/Status/Snapshot.js"

const settings = Effect.runSync(
  decodeSettings({
    KAFKA__BOOTSTRAP_SERVERS: "memory:9092",
    KAFKA__TOPIC_SOURCE: "orders",
    KAFKA__TOPIC_SINK: "orders.clean",
    KAFKA__CONSUMER_GROUP: "pipeline",
    MONGODB__CONNECTION_STRING: "mongodb://memory:27017/",
    MONGODB__DATABASE: "shop",
    MONGODB__COLLECTION: "orders",
  }),
)

const spec = {
  name: "orders",
  key: ["id"],
  tasks: [
    { name: "check", type: "data_quality", dependsOn: [] },
    { name: "mongodb", type: "mongodb_sink", dependsOn: ["check"] },
    { name: "kafka", type: "kafka_sink", dependsOn: ["check"] },
  ],
} as unknown as PipelineSpec

const observed = (over: Partial<Observed> = {}): Observed => ({
  plan: { spec, generation: 1, loadedAt: 0 },
  digest: "abc",
  detached: false,
  joined: true,
  assigned: [0, 1],
  committed: new Map(),
  lag: lagSnapshot(new Map(), "none"),
  stalls: [],
  batchAges: new Map(),
  ...over,
})

/** One batch of `n` records: all valid and written by both sinks. */
const batchOf = (board: Board, n: number) => {
  board.tasksRan([
    { name: "check", _tag: "Succeeded", attempts: 1, durationMs: 2 },
    { name: "mongodb", _tag: "Succeeded", attempts: 3, durationMs: 10 },
    { name: "kafka", _tag: "Succeeded", attempts: 1, durationMs: 4 },
  ])
  board.taskCounted(
    "check",
    { records: n, invalidated: 0 },
    Array.from({ length: n }, () => ({ status: "valid" })),
  )
  board.batchWritten(
    { consumed: n, valid: n, duplicates: 0, filtered: 0, deadLettered: 0, written: { mongodb: n, kafka: n } },
    [],
  )
}

const nodeOf = (snapshot: ReturnType<typeof snapshotOf>, name: string) =>
  snapshot.dag.nodes.find((n) => n.name === name)!

describe("Ring", () => {
  it("keeps the latest items, oldest first", () => {
    const ring = new Ring<number>(3)
    for (const n of [1, 2, 3, 4, 5]) ring.push(n)
    assert.deepStrictEqual(ring.toArray(), [3, 4, 5])
  })
})

describe("Board", () => {
  it("counts each task since start and over the last minute", () => {
    const board = new Board(0)
    // 10 records a second for two minutes, a copy taken after each second.
    for (let second = 1; second <= 120; second++) {
      batchOf(board, 10)
      board.sample(second * 1000)
    }
    const snapshot = snapshotOf(board, observed(), settings, {}, 120_000)
    const check = nodeOf(snapshot, "check")
    assert.deepInclude(check.total, { in: 1200, valid: 1200, invalid: 0, batches: 120, retries: 0 })
    assert.deepInclude(check.lastMinute, { in: 600, valid: 600, batches: 60 })
    assert.strictEqual(check.total.msPerBatch, 2)
    const mongodb = nodeOf(snapshot, "mongodb")
    assert.deepInclude(mongodb.total, { in: 1200, valid: 1200, retries: 240, failures: 0, msPerBatch: 10 })
    assert.strictEqual(mongodb.target, "shop.orders")
    assert.strictEqual(nodeOf(snapshot, "kafka").target, "orders.clean")
    assert.deepStrictEqual(snapshot.totals.total.written, { mongodb: 1200, kafka: 1200 })
    assert.strictEqual(snapshot.totals.lastMinute.consumed, 600)
    assert.strictEqual(snapshot.totals.lastMinuteSeconds, 60)
  })

  it("counts the last minute from the start while the service is younger than a minute", () => {
    const board = new Board(0)
    batchOf(board, 7)
    board.sample(1000)
    batchOf(board, 5)
    const snapshot = snapshotOf(board, observed(), settings, {}, 1500)
    assert.strictEqual(snapshot.totals.lastMinute.consumed, 12)
    assert.strictEqual(snapshot.totals.lastMinuteSeconds, 2)
  })

  it("gives records per second between copies, for at most 15 minutes", () => {
    const board = new Board(0)
    for (let second = 1; second <= 1000; second++) {
      batchOf(board, second <= 500 ? 4 : 8)
      board.sample(second * 1000)
    }
    const { throughput } = snapshotOf(board, observed(), settings, {}, 1_000_000)
    assert.strictEqual(throughput.in.length, 900)
    assert.strictEqual(throughput.end, 1_000_000)
    assert.strictEqual(throughput.in[0], 4)
    assert.strictEqual(throughput.in[899], 8)
    assert.strictEqual(throughput.written.mongodb?.[899], 8)
    assert.strictEqual(throughput.deadLettered[899], 0)
  })

  it("counts dead-letter reasons by stage, task and rule, once per letter, with the fields they named", () => {
    const board = new Board(0)
    const notNull = (field: string) => ({ task: "check", rule: "NotNull", field, message: "is null" })
    board.taskCounted("check", { records: 4, invalidated: 3 }, [{ status: "valid" }])
    board.batchWritten(
      {
        consumed: 5,
        valid: 1,
        duplicates: 0,
        filtered: 0,
        deadLettered: 4,
        written: { mongodb: 1, kafka: 1 },
      },
      [
        { stage: "validation", reasons: [notNull("email"), notNull("name")] },
        { stage: "validation", reasons: [notNull("email")] },
        {
          stage: "validation",
          reasons: [{ task: "check", rule: "Range", field: "amount", message: "too big" }],
        },
        { stage: "mongodb_sink", reasons: [{ task: "mongodb", rule: "size", message: "too large" }] },
      ],
    )
    const snapshot = snapshotOf(board, observed(), settings, {}, 1000)
    assert.deepStrictEqual(snapshot.deadLetters.reasons, [
      {
        stage: "validation",
        task: "check",
        rule: "NotNull",
        total: 2,
        lastMinute: 2,
        fields: [
          { field: "email", total: 2 },
          { field: "name", total: 1 },
        ],
      },
      {
        stage: "mongodb_sink",
        task: "mongodb",
        rule: "size",
        total: 1,
        lastMinute: 1,
        fields: [],
      },
      {
        stage: "validation",
        task: "check",
        rule: "Range",
        total: 1,
        lastMinute: 1,
        fields: [{ field: "amount", total: 1 }],
      },
    ])
    const check = nodeOf(snapshot, "check")
    assert.deepInclude(check.total, { in: 4, valid: 1, invalid: 3 })
    assert.deepStrictEqual(check.total.invalidByRule, { NotNull: 2, Range: 1 })
    // A sink's "in" is what it wrote plus what it turned away.
    assert.deepInclude(nodeOf(snapshot, "mongodb").total, { in: 2, valid: 1, invalid: 1 })
    assert.deepStrictEqual(nodeOf(snapshot, "mongodb").total.invalidByRule, { size: 1 })
    assert.deepInclude(nodeOf(snapshot, "kafka").total, { in: 1, valid: 1, invalid: 0 })
  })

  it("stops adding reasons past its cap, so that a server inventing error codes cannot grow it without end", () => {
    const board = new Board(0)
    for (let code = 0; code < 3000; code++) {
      board.batchWritten(
        { consumed: 1, valid: 0, duplicates: 0, filtered: 0, deadLettered: 1, written: {} },
        [
          {
            stage: "mongodb_sink",
            reasons: [{ task: "mongodb", rule: `mongodb_error_${code}`, message: "" }],
          },
        ],
      )
    }
    const snapshot = snapshotOf(board, observed(), settings, {}, 1000)
    assert.strictEqual(snapshot.deadLetters.reasons.length, 500)
    assert.strictEqual(snapshot.totals.total.deadLettered, 3000)
  })
})

describe("snapshotOf", () => {
  it("draws the graph from the plan's tasks and their dependencies", () => {
    const snapshot = snapshotOf(new Board(0), observed(), settings, {}, 0)
    assert.deepStrictEqual(
      snapshot.dag.nodes.map((n) => [n.name, n.kind, n.dependsOn]),
      [
        ["check", "transform", []],
        ["mongodb", "sink", ["check"]],
        ["kafka", "sink", ["check"]],
      ],
    )
    assert.deepInclude(snapshot.pipeline!, {
      name: "orders",
      generation: 1,
      digest: "abc",
      file: "config/pipeline.yaml",
    })
  })

  it("says starting, running, stalled or stopping", () => {
    const board = new Board(0)
    const stall = {
      partition: 1,
      since: 500,
      offsets: "0-99",
      what: "the mongodb sink",
      error: "down",
      retries: 4,
    }
    assert.strictEqual(snapshotOf(board, observed({ plan: undefined }), settings, {}, 0).state, "starting")
    assert.strictEqual(snapshotOf(board, observed(), settings, {}, 0).state, "running")
    assert.strictEqual(snapshotOf(board, observed({ detached: true }), settings, {}, 0).state, "stopping")
    const stalled = snapshotOf(board, observed({ stalls: [stall] }), settings, {}, 1000)
    assert.strictEqual(stalled.state, "stalled")
    assert.deepStrictEqual(stalled.partitions[1], {
      partition: 1,
      assigned: true,
      committedOffset: null,
      lastCommitAt: null,
      lag: null,
      stalled: true,
      stalledSince: 500,
      stall: { offsets: "0-99", what: "the mongodb sink", error: "down", retries: 4 },
      oldestBatchSeconds: null,
    })
  })

  it("lists every partition it knows of: assigned, committed, with lag or stalled", () => {
    const snapshot = snapshotOf(
      new Board(0),
      observed({
        assigned: [2],
        committed: new Map([[0, { offset: "42", at: 900 }]]),
        lag: lagSnapshot(
          new Map([
            [0, 3n],
            [2, 0n],
          ]),
          "broker",
        ),
        batchAges: new Map([[2, 1500]]),
      }),
      settings,
      {},
      1000,
    )
    assert.deepStrictEqual(
      snapshot.partitions.map((p) => [
        p.partition,
        p.assigned,
        p.committedOffset,
        p.lastCommitAt,
        p.lag,
        p.oldestBatchSeconds,
      ]),
      [
        [0, false, "42", 900, 3, null],
        [2, true, null, null, 0, 1.5],
      ],
    )
    assert.strictEqual(snapshot.consumer.lagSource, "broker")
  })

  it("counts tombstones applied and ignored, so that the totals account for every message", () => {
    const board = new Board(0)
    board.batchWritten(
      {
        consumed: 5,
        valid: 2,
        duplicates: 0,
        filtered: 0,
        deadLettered: 0,
        tombstonesApplied: 2,
        tombstonesIgnored: 1,
        written: { mongodb: 2, kafka: 2 },
      },
      [],
    )
    const { total } = snapshotOf(board, observed(), settings, {}, 1000).totals
    assert.strictEqual(total.tombstones, 3)
    assert.strictEqual(
      total.valid + total.duplicates + total.filtered + total.deadLettered + total.tombstones,
      total.consumed,
    )
  })
})
