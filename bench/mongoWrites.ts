/**
 * The cost of monotonic MongoDB writes and of the durable duplicate window, against the stack's
 * MongoDB-compatible server (FerretDB), side by side with the write the sink made before them,
 * in one run. Every round writes the same documents (the generator's valid records, mapped as
 * the shipped pipeline maps them is not needed: their JSON as it is) in batches of 500 to a
 * fresh collection, both ways, alternating which goes first:
 *
 * - before: insertMany unordered, then the documents whose `_id` exists (E11000) replaced by
 *   `_id` in commands of 25 (the sink's write before positions);
 * - monotonic: the sink's write now (src/Mongo/MongoSink.ts upsertAll, as the service runs it on
 *   this server): each document carries `_kafka`, and the existing ones are replaced only after
 *   their stored positions are read;
 * - monotonic + window: the same, with the batch's 500 keys saved in the duplicate window
 *   collection at the same time (src/Mongo/SavedKeys.ts), as a batch of the shipped pipeline does.
 *
 * Two cases: `new` (every key new: the steady state of a stream of distinct keys) and `replay`
 * (every key stored already from the same offsets: a batch read again after a crash).
 * Reported: documents per second of each (median of the rounds) and the ratio to `before`.
 *
 * Run with `npm run bench -- mongo-writes [documents] [rounds]` (defaults 20,000 and 3).
 */
import { Effect } from "effect"
import { type Collection, type Document, MongoBulkWriteError, MongoClient } from "mongodb"
import { settings as stack } from "../scripts/stack.js"
import { defaultRecordOptions, generate } from "../src/Generator/Records.js"
import { type SinkDocument, type StoredDocument, upsertAll } from "../src/Mongo/MongoSink.js"
import { type StoredKeys, windowStore } from "../src/Mongo/SavedKeys.js"

const documents = Number(process.argv[2] ?? 20_000)
const rounds = Number(process.argv[3] ?? 3)
const batchSize = 500
const writeConcern = { w: "majority" as const, journal: true }

const records = [
  ...generate({ ...defaultRecordOptions, seed: 4242, pattern: "valid", duplicateRatio: 0 }, 0, documents),
]
const batches: Array<Array<SinkDocument>> = []
for (let i = 0; i < records.length; i += batchSize) {
  batches.push(
    records.slice(i, i + batchSize).map((r, j) => ({
      id: r.key!,
      document: r.value as Document,
      position: { topic: "bench", partition: 0, offset: String(i + j) },
    })),
  )
}

/** The sink's write before positions. */
const before = async (collection: Collection<StoredDocument>, batch: ReadonlyArray<SinkDocument>) => {
  try {
    await collection.insertMany(
      batch.map((d) => ({ ...d.document, _id: d.id })),
      { ordered: false, writeConcern },
    )
  } catch (e) {
    if (!(e instanceof MongoBulkWriteError)) throw e
    const errors = Array.isArray(e.writeErrors) ? e.writeErrors : [e.writeErrors]
    if (errors.some((w) => w.code !== 11000)) throw e
    const existing = errors.map((w) => batch[w.index]!)
    for (let i = 0; i < existing.length; i += 25) {
      await collection.bulkWrite(
        existing.slice(i, i + 25).map((d) => ({
          replaceOne: { filter: { _id: d.id }, replacement: d.document, upsert: true },
        })),
        { ordered: false, writeConcern },
      )
    }
  }
}

const options = { replaceBatchSize: 25, conditionalReplace: false }

type Way = "before" | "monotonic" | "monotonic + window"
const ways: ReadonlyArray<Way> = ["before", "monotonic", "monotonic + window"]

const main = async () => {
  const client = new MongoClient(`mongodb://${stack.host}:${stack.mongoPort}/`)
  await client.connect()
  const db = client.db("bench_mongo_writes")
  await db.dropDatabase()
  const results: Record<string, Array<number>> = {}
  const note = (name: string, seconds: number) => {
    results[name] = [...(results[name] ?? []), documents / seconds]
  }
  try {
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? ways : [...ways].reverse()
      for (const way of order) {
        const collection = db.collection<StoredDocument>(`docs_${round}_${way.replace(/\W+/g, "_")}`)
        const windows = windowStore(db.collection<StoredKeys>(`windows_${round}_${way.replace(/\W+/g, "_")}`))
        const write = async (batch: ReadonlyArray<SinkDocument>, index: number) => {
          if (way === "before") return before(collection, batch)
          const upsert = Effect.runPromise(upsertAll(collection, batch, writeConcern, options))
          if (way === "monotonic") return void (await upsert)
          const save = Effect.runPromise(
            windows.save(
              { group: "bench", task: "dedupe", topic: "bench", partition: 0 },
              {
                first: String(index * batchSize),
                last: String(index * batchSize + batch.length - 1),
                at: Date.now(),
                keys: batch.map((d) => d.id),
                offsets: batch.map((d) => d.position.offset),
              },
              { since: Date.now() - 3_600_000, offset: index * batchSize - 100_000 },
            ),
          )
          await Promise.all([upsert, save])
        }
        for (const pass of ["new", "replay"] as const) {
          const start = performance.now()
          for (const [i, batch] of batches.entries()) await write(batch, i)
          note(`${pass} ${way}`, (performance.now() - start) / 1000)
        }
        await collection.drop()
      }
    }
  } finally {
    await db.dropDatabase()
    await client.close()
  }
  const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!
  console.log(`${documents} documents in batches of ${batchSize}, ${rounds} rounds; documents/s, median`)
  for (const pass of ["new", "replay"]) {
    const base = median(results[`${pass} before`]!)
    for (const way of ways) {
      const rate = median(results[`${pass} ${way}`]!)
      console.log(
        `  ${pass.padEnd(7)} ${way.padEnd(19)} ${Math.round(rate).toLocaleString("en-US").padStart(8)}   ${(rate / base).toFixed(2)}x of before`,
      )
    }
  }
}

main().catch((e: unknown) => {
  console.error(e)
  process.exit(1)
})
