/**
 * What a run left behind (MongoDB, the sink and dead-letter topics, the source topic), how it
 * compares with a clean run of the same input, and the offsets that say how far a group got.
 */
import { assert } from "@effect/vitest"
import type { Document } from "mongodb"
import { kafka, type Names, readCommitted, topicSize, withMongo } from "../../integration/support/Service.js"
import type { PreloadedDocument } from "./Input.js"

/** Fills the collection the service will write to, before the service starts. */
export const preload = (database: string, documents: ReadonlyArray<PreloadedDocument>) =>
  withMongo(async (client) => {
    const collection = client.db(database).collection<PreloadedDocument>("orders")
    for (let i = 0; i < documents.length; i += 2_000) {
      await collection.insertMany(documents.slice(i, i + 2_000), { ordered: false })
    }
    assert.strictEqual(await collection.countDocuments(), documents.length, "preloaded documents")
  })

/** A document as text with its fields in a fixed order, so that insert and replace compare equal. */
const canonical = (value: unknown): unknown => {
  if (Array.isArray(value)) return value.map(canonical)
  if (value !== null && typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(
      Object.entries(value)
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([k, v]) => [k, canonical(v)]),
    )
  }
  return value
}

export interface Outcome {
  /** `_id` -> the document as canonical JSON. */
  readonly documents: ReadonlyMap<string, string>
  readonly sinkMessages: number
  readonly sinkKeys: ReadonlySet<string>
  /** Source coordinates (`partition:offset`) of the sink messages: one each, unless a batch was written twice. */
  readonly sinkSources: ReadonlySet<string>
  readonly deadLetters: number
  /** `x-index` headers of the dead letters. */
  readonly deadIndexes: ReadonlySet<string>
  /** Messages on the source topic (more than produced when the producer had to send again). */
  readonly sourceMessages: number
}

export const collect = async (names: Names): Promise<Outcome> => {
  const documents = await withMongo(async (client) => {
    // Without the source position each document keeps (`_kafka`): every run reads its own topic.
    const all = await client
      .db(names.database)
      .collection<Document>("orders")
      .find({}, { projection: { _kafka: 0 } })
      .toArray()
    return new Map(all.map((d) => [String(d._id), JSON.stringify(canonical(d))]))
  })
  // As a read_committed consumer sees them (with exactly_once, aborted transactions are not there).
  const sink = await readCommitted(names.sink)
  const dlq = await readCommitted(names.dlq)
  return {
    documents,
    sinkMessages: sink.length,
    sinkKeys: new Set(sink.map((m) => m.key ?? "")),
    sinkSources: new Set(
      sink.map((m) => `${m.headers["pipeline.source.partition"]}:${m.headers["pipeline.source.offset"]}`),
    ),
    deadLetters: dlq.length,
    deadIndexes: new Set(dlq.map((m) => m.headers["x-index"] ?? "")),
    sourceMessages: await topicSize(names.source),
  }
}

const sorted = (values: Iterable<string>) => [...values].sort()

/** The first few members of a set difference, for a readable failure. */
const difference = (a: ReadonlySet<string>, b: ReadonlySet<string>) => {
  const only = [...a].filter((x) => !b.has(x))
  return `${only.length} (${only.slice(0, 5).join(", ")}${only.length > 5 ? ", ..." : ""})`
}

export const assertSameSet = (actual: ReadonlySet<string>, expected: ReadonlySet<string>, what: string) => {
  if (actual.size === expected.size && [...actual].every((x) => expected.has(x))) return
  assert.fail(
    `${what}: ${actual.size} instead of ${expected.size}; missing ${difference(expected, actual)}, unexpected ${difference(actual, expected)}`,
  )
}

/**
 * A run with a fault left exactly what the clean run left: the same documents (ids and
 * contents), the same distinct sink keys, the same dead letters (plus `extraDead`, messages
 * only the faulty run had).
 */
export const assertSameAs = (faulty: Outcome, clean: Outcome, extraDead: ReadonlySet<string> = new Set()) => {
  assertSameSet(new Set(faulty.documents.keys()), new Set(clean.documents.keys()), "MongoDB _ids")
  const differing = [...clean.documents].filter(([id, doc]) => faulty.documents.get(id) !== doc)
  assert.deepStrictEqual(
    differing.slice(0, 3).map(([id, doc]) => ({ id, clean: doc, faulty: faulty.documents.get(id) })),
    [],
    `${differing.length} documents differ from the clean run`,
  )
  assertSameSet(faulty.sinkKeys, clean.sinkKeys, "distinct keys on the sink topic")
  assertSameSet(faulty.deadIndexes, new Set([...clean.deadIndexes, ...extraDead]), "dead letters by x-index")
}

export const summary = (o: Outcome) => ({
  documents: o.documents.size,
  distinctSinkKeys: o.sinkKeys.size,
  sinkDuplicates: o.sinkMessages - o.sinkKeys.size,
  // Sink messages written again for the same source message (a replay), not a later record of a key.
  sinkReplays: o.sinkMessages - o.sinkSources.size,
  deadLetters: o.deadLetters,
  deadLetterDuplicates: o.deadLetters - o.deadIndexes.size,
})

export { sorted }

// ---------------------------------------------------------------------------------------------
// Offsets

const withAdmin = async <A>(f: (admin: ReturnType<typeof kafka.admin>) => Promise<A>): Promise<A> => {
  const admin = kafka.admin()
  await admin.connect()
  try {
    return await f(admin)
  } finally {
    await admin.disconnect().catch(() => undefined)
  }
}

/** Each partition's end offset (high watermark). */
export const endOffsets = (topic: string): Promise<ReadonlyMap<number, number>> =>
  withAdmin(
    async (admin) =>
      new Map((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, Number(p.high)])),
  )

/** Each partition's committed offset of the group (-1 when none). */
export const committedOffsets = (group: string, topic: string): Promise<ReadonlyMap<number, number>> =>
  withAdmin(async (admin) => {
    const [committed] = await admin.fetchOffsets({ groupId: group, topics: [topic] })
    return new Map((committed?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]))
  })

/** Sum of the group's committed offsets (0 for a partition with none). */
export const committedTotal = async (group: string, topic: string) =>
  [...(await committedOffsets(group, topic)).values()].reduce((n, o) => n + Math.max(0, o), 0)

/** True when the group has committed at least `targets` on every partition. */
export const committedAtLeast = async (
  group: string,
  topic: string,
  targets: ReadonlyMap<number, number>,
) => {
  const committed = await committedOffsets(group, topic)
  return [...targets].every(([p, end]) => end === 0 || (committed.get(p) ?? -1) >= end)
}
