/**
 * Which offsets of the dead-letter topic a replay reads, partition by partition. By default
 * everything its group has not replayed yet: from the group's position (the start of the topic
 * for a new group) to the end the topic had when the replay began, so that what the replay
 * itself writes there is never read by the same run. --from and --to narrow that, as a time (the
 * dead letters written at or after / at or before it) or as offsets (the same for every
 * partition, or per partition). A range never starts before the group's position: what lies
 * before it was replayed, or passed over for good.
 */

/** --from or --to as given: a time, or offsets. */
export type Position =
  | { readonly _tag: "Time"; readonly at: number }
  | {
      readonly _tag: "Offsets"
      /** For every partition not named. */
      readonly all: bigint | undefined
      readonly byPartition: ReadonlyMap<number, bigint>
    }

const example =
  "a time (2026-12-03T10:00:00Z), an offset for every partition (120) or offsets per partition (0:120,2:95)"

/** Parses a --from/--to value; a string is the problem with it. */
export const parsePosition = (flag: string, text: string): Position | string => {
  const value = text.trim()
  if (/^\d+$/.test(value)) return { _tag: "Offsets", all: BigInt(value), byPartition: new Map() }
  if (/^\d+:\d+(,\d+:\d+)*$/.test(value)) {
    const byPartition = new Map<number, bigint>()
    for (const pair of value.split(",")) {
      const [partition, offset] = pair.split(":") as [string, string]
      if (byPartition.has(Number(partition)))
        return `${flag}: partition ${partition} is named twice in "${text}"`
      byPartition.set(Number(partition), BigInt(offset))
    }
    return { _tag: "Offsets", all: undefined, byPartition }
  }
  if (/^\d{4}-\d{2}-\d{2}/.test(value)) {
    const at = Date.parse(value)
    if (Number.isFinite(at)) return { _tag: "Time", at }
  }
  return `${flag}: expected ${example}, got "${text}"`
}

/** A partition's offsets as the broker and the replay's group have them. */
export interface PartitionState {
  readonly partition: number
  /** The first offset the topic still holds. */
  readonly low: bigint
  /** The offset after the last message, when the replay began. */
  readonly high: bigint
  /** Where the group has replayed to (the next offset it reads); -1 when it has not committed. */
  readonly committed: bigint
}

/** The offsets of one partition a replay reads: [start, end). */
export interface PartitionRange {
  readonly partition: number
  readonly start: bigint
  readonly end: bigint
}

export interface Ranges {
  readonly ranges: ReadonlyArray<PartitionRange>
  /** What the operator should know about how the flags were applied. */
  readonly notes: ReadonlyArray<string>
}

const max = (a: bigint, b: bigint) => (a > b ? a : b)
const min = (a: bigint, b: bigint) => (a < b ? a : b)

/** Where the group is in the partition: the next offset it reads (the topic's first for a new group). */
export const groupPosition = (p: PartitionState): bigint => max(p.committed, p.low)

/**
 * The range of every partition. `from` is the first offset to read, `to` the offset after the
 * last one (each per partition, when given: a time is resolved to offsets by the broker first).
 */
export const resolveRanges = (
  partitions: ReadonlyArray<PartitionState>,
  from: ReadonlyMap<number, bigint> | undefined,
  to: ReadonlyMap<number, bigint> | undefined,
): Ranges => {
  const notes: string[] = []
  const ranges = [...partitions]
    .sort((a, b) => a.partition - b.partition)
    .map((p): PartitionRange => {
      const position = groupPosition(p)
      const asked = from?.get(p.partition)
      if (asked !== undefined && asked < p.committed)
        notes.push(
          `partition ${p.partition}: --from ${asked} is before where this group has replayed to (${p.committed}); it starts there: what lies before was replayed or passed over for good`,
        )
      const start = min(asked === undefined ? position : max(asked, position), p.high)
      const until = to?.get(p.partition)
      const end = until === undefined ? p.high : max(start, min(until, p.high))
      return { partition: p.partition, start, end }
    })
  return { ranges, notes }
}

/** Offsets given per partition, for every partition of the topic (a time is resolved elsewhere). */
export const offsetsFor = (
  position: Extract<Position, { _tag: "Offsets" }>,
  partitions: ReadonlyArray<number>,
  inclusiveEnd: boolean,
): ReadonlyMap<number, bigint> => {
  const out = new Map<number, bigint>()
  for (const partition of partitions) {
    const offset = position.byPartition.get(partition) ?? position.all
    if (offset !== undefined) out.set(partition, inclusiveEnd ? offset + 1n : offset)
  }
  return out
}

/** Partitions a position names that the topic does not have. */
export const unknownPartitions = (
  position: Position,
  partitions: ReadonlyArray<number>,
): ReadonlyArray<number> =>
  position._tag === "Offsets" ? [...position.byPartition.keys()].filter((p) => !partitions.includes(p)) : []

export const describeRange = (r: PartitionRange): string =>
  r.start >= r.end ? `${r.partition}: nothing` : `${r.partition}: ${r.start}-${r.end - 1n}`
