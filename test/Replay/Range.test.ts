import { assert, describe, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { decodeSettings } from "../../src/Config/AppConfig.js"
import { defaultMaxReplays, type ReplayFlags, resolveFlags } from "../../src/Replay/Options.js"
import { offsetsFor, type PartitionState, parsePosition, resolveRanges } from "../../src/Replay/Range.js"

const state = (partition: number, low: number, high: number, committed = -1): PartitionState => ({
  partition,
  low: BigInt(low),
  high: BigInt(high),
  committed: BigInt(committed),
})

const plain = (ranges: ReturnType<typeof resolveRanges>["ranges"]) =>
  ranges.map((r) => [r.partition, Number(r.start), Number(r.end)])

describe("--from and --to", () => {
  it("reads a time, an offset for every partition, or offsets per partition", () => {
    assert.deepStrictEqual(parsePosition("--from", "2026-12-03T10:00:00Z"), {
      _tag: "Time",
      at: Date.UTC(2026, 11, 3, 10),
    })
    assert.deepStrictEqual(parsePosition("--from", "120"), {
      _tag: "Offsets",
      all: 120n,
      byPartition: new Map(),
    })
    assert.deepStrictEqual(parsePosition("--to", "0:120,2:95"), {
      _tag: "Offsets",
      all: undefined,
      byPartition: new Map([
        [0, 120n],
        [2, 95n],
      ]),
    })
  })

  it("names what it cannot read", () => {
    assert.include(parsePosition("--from", "yesterday") as string, "--from: expected a time")
    assert.include(parsePosition("--from", "2026-13-45") as string, 'got "2026-13-45"')
    assert.strictEqual(parsePosition("--to", "1:5,1:6"), '--to: partition 1 is named twice in "1:5,1:6"')
    assert.include(parsePosition("--to", "-5") as string, "expected")
  })

  it("--to includes the offset it names; a partition it does not name keeps its default", () => {
    const to = parsePosition("--to", "0:9") as Extract<ReturnType<typeof parsePosition>, { _tag: "Offsets" }>
    assert.deepStrictEqual([...offsetsFor(to, [0, 1], true)], [[0, 10n]])
    const from = parsePosition("--from", "4") as Extract<
      ReturnType<typeof parsePosition>,
      { _tag: "Offsets" }
    >
    assert.deepStrictEqual(
      [...offsetsFor(from, [0, 1], false)],
      [
        [0, 4n],
        [1, 4n],
      ],
    )
  })
})

describe("the range of each partition", () => {
  it("by default: from where the group is (the topic's start for a new group) to the end the topic has now", () => {
    const { ranges, notes } = resolveRanges(
      [state(1, 0, 50, 20), state(0, 5, 30), state(2, 0, 0)],
      undefined,
      undefined,
    )
    assert.deepStrictEqual(plain(ranges), [
      [0, 5, 30],
      [1, 20, 50],
      [2, 0, 0],
    ])
    assert.deepStrictEqual(notes, [])
  })

  it("never starts before what the group has replayed, and says so", () => {
    const { ranges, notes } = resolveRanges([state(0, 0, 50, 20)], new Map([[0, 5n]]), undefined)
    assert.deepStrictEqual(plain(ranges), [[0, 20, 50]])
    assert.strictEqual(notes.length, 1)
    assert.include(notes[0]!, "partition 0: --from 5 is before where this group has replayed to (20)")
  })

  it("--from past the group's position starts there; --to ends the range; neither goes past the topic's end", () => {
    const { ranges } = resolveRanges(
      [state(0, 0, 50, 20), state(1, 10, 50), state(2, 0, 50)],
      new Map([
        [0, 30n],
        [2, 80n],
      ]),
      new Map([
        [0, 40n],
        [1, 5n],
        [2, 90n],
      ]),
    )
    assert.deepStrictEqual(plain(ranges), [
      [0, 30, 40],
      // --to before the start: nothing.
      [1, 10, 10],
      [2, 50, 50],
    ])
  })
})

describe("the replay's flags", () => {
  const settings = Effect.runSync(
    decodeSettings({
      KAFKA__BOOTSTRAP_SERVERS: "127.0.0.1:9092",
      KAFKA__TOPIC_SOURCE: "orders",
      KAFKA__TOPIC_SINK: "orders.clean",
      KAFKA__CONSUMER_GROUP: "pipeline",
      MONGODB__CONNECTION_STRING: "mongodb://127.0.0.1:27017/",
      MONGODB__DATABASE: "shop",
      MONGODB__COLLECTION: "orders",
    }),
  )
  const none: ReplayFlags = {
    topic: Option.none(),
    group: Option.none(),
    from: Option.none(),
    to: Option.none(),
    reason: [],
    key: [],
    dryRun: false,
    maxReplays: Option.none(),
    examples: Option.none(),
  }

  it("default to the dead-letter topic, a group of the replay's own and the documented loop limit", () => {
    const resolved = resolveFlags(none, settings)
    assert.isTrue("options" in resolved)
    if (!("options" in resolved)) return
    assert.strictEqual(resolved.options.topic, "orders.dlq")
    assert.strictEqual(resolved.options.group, "pipeline.replay")
    assert.strictEqual(resolved.options.maxReplays, defaultMaxReplays)
    assert.strictEqual(defaultMaxReplays, 3)
  })

  it("name every problem at once", () => {
    const resolved = resolveFlags(
      {
        ...none,
        group: Option.some("pipeline"),
        from: Option.some("2026-12-03T10:00:00Z"),
        to: Option.some("2026-12-02T10:00:00Z"),
        reason: ["  "],
        maxReplays: Option.some("many"),
        examples: Option.some("-1"),
      },
      settings,
    )
    assert.isTrue("problems" in resolved)
    if (!("problems" in resolved)) return
    assert.deepStrictEqual(resolved.problems, [
      `--group: "pipeline" is the service's own group (KAFKA__CONSUMER_GROUP); a replay needs a group of its own`,
      "--to: the time is before --from's: the range is empty",
      "--reason: expected a value, got an empty one",
      '--max-replays: expected a whole number from 1 to 1000, got "many"',
      '--examples: expected a whole number from 0 to 100, got "-1"',
    ])
  })
})
