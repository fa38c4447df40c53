/**
 * The cost of the write models (MONGODB__WRITE_MODEL replace, merge, insert) and of a Debezium
 * change stream beside a plain one, against the stack's MongoDB-compatible server (FerretDB), in
 * one run. Every round writes both streams under each model to a fresh collection, alternating
 * the order, as the service's MongoDB sink writes them on this server (src/Mongo/MongoSink.ts
 * upsertAll and src/Mongo/MongoDeletes.ts deleteAll, the read before the write deciding), in
 * batches of 500 messages:
 *
 * - plain: the generator's valid order events, every key new (a stream of distinct keys);
 * - debezium: the generator's change stream (`--format debezium`) over a table of a fifth as many
 *   rows as messages, so most events update a stored row; 10% deletes, each followed by its
 *   tombstone. Each batch's events are unwrapped by the service's parser (src/Pipeline/Debezium.ts)
 *   and written in the service's order (src/Pipeline/Delivery.ts): its deletes first, leaving
 *   their markers in `<collection>_deletes`, then its creates and updates that no later delete of
 *   their key in the batch removes (tombstones ignored, as with MONGODB__ON_TOMBSTONE=ignore);
 * - debezium newerBy: the same under `replace` with the row's `version` as the sink's `newerBy`;
 * - debezium unmarked: the same under `replace` without the deletes' markers (the cost of them).
 *
 * Reported: messages per second (median of the rounds), the ratio to `replace` on the same
 * stream, and the ratio to plain `replace`. After each debezium pass the collection is compared
 * with the table the stream leaves: under replace and merge it must be that table, under insert
 * it must hold the table's keys (insert leaves the first version of a row: updates are skipped);
 * else the run fails.
 *
 * Run with `npm run bench -- write-models [messages] [rounds]` (defaults 10,000 and 3).
 */
import { Effect } from "effect"
import { type Document, MongoClient } from "mongodb"
import { settings as stack } from "../scripts/stack.js"
import { changeStream, finalTable } from "../src/Generator/Debezium.js"
import { defaultRecordOptions, generate } from "../src/Generator/Records.js"
import { deleteAll } from "../src/Mongo/MongoDeletes.js"
import { type SinkDocument, type StoredDocument, upsertAll, type WriteModel } from "../src/Mongo/MongoSink.js"
import { changeEvent } from "../src/Pipeline/Debezium.js"

const messages = Number(process.argv[2] ?? 10_000)
const rounds = Number(process.argv[3] ?? 3)
const batchSize = 500
const writeConcern = { w: "majority" as const, journal: true }
const models: ReadonlyArray<WriteModel> = ["replace", "merge", "insert"]
type Stream = "plain" | "debezium"
const streams: ReadonlyArray<Stream> = ["plain", "debezium"]

interface Batch {
  readonly upserts: ReadonlyArray<SinkDocument>
  readonly deletes: ReadonlyArray<{ readonly id: string; readonly position: SinkDocument["position"] }>
}

const at = (offset: number) => ({ topic: "bench", partition: 0, offset: String(offset) })

const batchesOf = <A>(
  items: ReadonlyArray<A>,
  toBatch: (slice: ReadonlyArray<A>, first: number) => Batch,
) => {
  const out: Array<Batch> = []
  for (let i = 0; i < items.length; i += batchSize) out.push(toBatch(items.slice(i, i + batchSize), i))
  return out
}

const plain = batchesOf(
  [...generate({ ...defaultRecordOptions, seed: 4243, pattern: "valid", duplicateRatio: 0 }, 0, messages)],
  (slice, first) => ({
    upserts: slice.map((r, j) => ({ id: r.key!, document: r.value as Document, position: at(first + j) })),
    deletes: [],
  }),
)

const changes = [
  ...changeStream(
    4243,
    defaultRecordOptions.baseTime,
    { rows: Math.max(1, Math.floor(messages / 5)), deleteRatio: 0.1, tombstoneRatio: 1 },
    messages,
  ),
]
const table = finalTable(changes)
const debeziumBatches = (versioned: boolean) =>
  batchesOf(changes, (slice, first) => {
    const upserts: Array<SinkDocument> = []
    const deletes: Array<Batch["deletes"][number]> = []
    slice.forEach((m, j) => {
      if (m.tombstone === true || m.value instanceof Uint8Array) return
      const event = changeEvent(m.value, m.key, 1024)
      const position = at(first + j)
      if (event._tag === "Upsert") {
        const id = String(event.row.id)
        const version = event.row.version
        upserts.push(
          versioned && typeof version === "number"
            ? { id, document: event.row, position, version }
            : { id, document: event.row, position },
        )
      } else if (event._tag === "Delete") deletes.push({ id: event.key, position })
      else throw new Error(`message ${m.index}: ${event.message}`)
    })
    // As the service writes them: a record a later delete of its key removes is not written.
    const lastDelete = new Map(deletes.map((d) => [d.id, Number(d.position.offset)]))
    return {
      upserts: upserts.filter((u) => (lastDelete.get(u.id) ?? -1) < Number(u.position.offset)),
      deletes,
    }
  })
const debezium = debeziumBatches(false)
const debeziumNewerBy = debeziumBatches(true)

const withoutMeta = ({ _id, _kafka, ...row }: StoredDocument): Document => row

const main = async () => {
  const client = new MongoClient(`mongodb://${stack.host}:${stack.mongoPort}/`)
  await client.connect()
  const db = client.db("bench_write_models")
  await db.dropDatabase()
  const results: Record<string, Array<number>> = {}
  const problems: Array<string> = []
  try {
    for (let round = 0; round < rounds; round++) {
      const cases = [
        ...streams.flatMap((stream) => models.map((model) => [stream, model, false, true] as const)),
        ["debezium", "replace", true, true] as const,
        ["debezium", "replace", false, false] as const,
      ]
      for (const [stream, model, versioned, marked] of round % 2 === 0 ? cases : [...cases].reverse()) {
        const name = `${stream}${versioned ? " newerBy" : ""}${marked ? "" : " unmarked"} ${model}`
        const collection = db.collection<StoredDocument>(`docs_${round}_${name.replace(/ /g, "_")}`)
        const markers = db.collection<StoredDocument>(`docs_${round}_${name.replace(/ /g, "_")}_deletes`)
        const options = {
          replaceBatchSize: 25,
          conditionalReplace: false,
          writeModel: model,
          ...(stream === "debezium" && marked ? { markers: { collection: markers, prunedAt: 0 } } : {}),
        }
        const start = performance.now()
        for (const batch of stream === "plain" ? plain : versioned ? debeziumNewerBy : debezium) {
          if (batch.deletes.length > 0)
            await Effect.runPromise(deleteAll(collection, batch.deletes, writeConcern, options))
          await Effect.runPromise(upsertAll(collection, batch.upserts, writeConcern, options))
        }
        const seconds = (performance.now() - start) / 1000
        results[name] = [...(results[name] ?? []), messages / seconds]
        if (stream === "debezium") {
          const stored = new Map((await collection.find({}).toArray()).map((d) => [d._id, withoutMeta(d)]))
          const keys = new Set([...table.keys(), ...stored.keys()])
          const differ = [...keys].filter((k) => stored.has(k) !== table.has(k)).length
          const rowsMatch = [...table].every(
            ([k, row]) => JSON.stringify(stored.get(k)) === JSON.stringify(row),
          )
          if (differ > 0 || (model !== "insert" && !rowsMatch))
            problems.push(`round ${round}, ${name}: the collection is not the table the stream leaves`)
        }
        await collection.drop()
        await markers.drop().catch(() => undefined)
      }
    }
  } finally {
    await db.dropDatabase()
    await client.close()
  }
  const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!
  const deletes = changes.filter((m) => m.kind === "delete").length
  const tombstones = changes.filter((m) => m.kind === "tombstone").length
  console.log(
    `${messages} messages a stream in batches of ${batchSize}, ${rounds} rounds; messages/s, median` +
      `\n  debezium: ${table.size} rows left of ${Math.floor(messages / 5)}, ${deletes} deletes, ${tombstones} tombstones`,
  )
  const plainReplace = median(results["plain replace"]!)
  const names = [
    ...streams.flatMap((stream) => models.map((model) => `${stream} ${model}`)),
    "debezium newerBy replace",
    "debezium unmarked replace",
  ]
  for (const name of names) {
    const rate = median(results[name]!)
    const replace = median(results[`${name.split(" ")[0]} replace`]!)
    console.log(
      `  ${name.padEnd(26)} ${Math.round(rate).toLocaleString("en-US").padStart(8)}   ${(rate / replace).toFixed(2)}x of its stream's replace   ${(rate / plainReplace).toFixed(2)}x of plain replace`,
    )
  }
  console.log(
    problems.length === 0
      ? "  check: every debezium pass left the table's final state (insert: its keys)"
      : problems.join("\n"),
  )
  if (problems.length > 0) process.exitCode = 1
}

main().catch((e: unknown) => {
  console.error(e)
  process.exit(1)
})
