/**
 * What a replay learns from the broker before it reads: whether the topic exists, each
 * partition's offsets, how far the replay's group has replayed, whether another member is in
 * that group now (another replay of it running), and --from/--to resolved to offsets.
 */
import { Data, Effect } from "effect"
import { KafkaConnectionError } from "../Kafka/Errors.js"
import { KafkaClient } from "../Kafka/KafkaClient.js"
import type { ReplayOptions } from "./Options.js"
import { offsetsFor, type PartitionState, type Position, resolveRanges, unknownPartitions } from "./Range.js"

/** The command line names something the broker does not have (exit code 2). */
export class ReplayProblems extends Data.TaggedError("ReplayProblems")<{
  readonly problems: ReadonlyArray<string>
}> {
  override get message() {
    return this.problems.join("\n")
  }
}

export interface Inspected {
  readonly partitions: ReadonlyArray<PartitionState>
  readonly from: ReadonlyMap<number, bigint> | undefined
  readonly to: ReadonlyMap<number, bigint> | undefined
  /** Members of the replay's group now. */
  readonly members: number
}

export const inspect = (options: ReplayOptions, brokers: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const client = yield* KafkaClient
    const admin = client.admin()
    const failure = (cause: unknown) =>
      new KafkaConnectionError({ client: "admin", brokers: brokers.join(","), cause })
    const found = yield* Effect.acquireUseRelease(
      Effect.tryPromise({ try: () => admin.connect(), catch: failure }),
      () =>
        Effect.tryPromise({
          try: async () => {
            if (!(await admin.listTopics()).includes(options.topic)) return undefined
            const offsets = await admin.fetchTopicOffsets(options.topic)
            const [committed] = await admin.fetchOffsets({ groupId: options.group, topics: [options.topic] })
            const byPartition = new Map(
              committed?.partitions.map((p) => [p.partition, BigInt(p.offset)]) ?? [],
            )
            const { groups } = await admin.describeGroups([options.group])
            /** The first offset of every partition whose timestamp is at or after `at`. */
            const at = async (time: number) =>
              new Map(
                (await admin.fetchTopicOffsetsByTimestamp(options.topic, time)).map((p) => [
                  p.partition,
                  BigInt(p.offset),
                ]),
              )
            const partitions = offsets.map(
              (p): PartitionState => ({
                partition: p.partition,
                low: BigInt(p.low),
                high: BigInt(p.high),
                committed: byPartition.get(p.partition) ?? -1n,
              }),
            )
            const ids = partitions.map((p) => p.partition)
            const resolve = async (position: Position | undefined, end: boolean) =>
              position === undefined
                ? undefined
                : position._tag === "Time"
                  ? // Through --to's time: the first offset after it ends the range.
                    await at(end ? position.at + 1 : position.at)
                  : offsetsFor(position, ids, end)
            return {
              partitions,
              from: await resolve(options.from, false),
              to: await resolve(options.to, true),
              members: groups.find((g) => g.groupId === options.group)?.members.length ?? 0,
            } satisfies Inspected
          },
          catch: failure,
        }),
      () => Effect.promise(() => admin.disconnect().catch(() => undefined)),
    )
    if (found === undefined)
      return yield* new ReplayProblems({ problems: [`--topic: the broker has no topic "${options.topic}"`] })
    const ids = found.partitions.map((p) => p.partition)
    const unknown = [
      ...(options.from === undefined
        ? []
        : unknownPartitions(options.from, ids).map((p) => `--from: partition ${p}`)),
      ...(options.to === undefined
        ? []
        : unknownPartitions(options.to, ids).map((p) => `--to: partition ${p}`)),
    ]
    if (unknown.length > 0)
      return yield* new ReplayProblems({
        problems: unknown.map((u) => `${u}: topic "${options.topic}" has partitions ${ids.join(", ")} only`),
      })
    return { ...found, ...resolveRanges(found.partitions, found.from, found.to) }
  })

export const topicExists = (topic: string, brokers: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const client = yield* KafkaClient
    const admin = client.admin()
    const failure = (cause: unknown) =>
      new KafkaConnectionError({ client: "admin", brokers: brokers.join(","), cause })
    return yield* Effect.acquireUseRelease(
      Effect.tryPromise({ try: () => admin.connect(), catch: failure }),
      () =>
        Effect.tryPromise({ try: async () => (await admin.listTopics()).includes(topic), catch: failure }),
      () => Effect.promise(() => admin.disconnect().catch(() => undefined)),
    )
  })
