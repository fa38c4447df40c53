/**
 * Baseline B, the sink ceiling (a child of the benchmark): the documents the pipeline stores
 * for the stream (computed before the clock starts), written with the bare mongodb driver the
 * way the service's MongoDB sink writes them: batches of the batch size, as many at once as the
 * service handles partitions, each an unordered insertMany with the key as `_id`, and only the
 * documents that already exist (E11000) replaced by `_id` with upsert (BareMongo.ts, which
 * baseline C shares).
 */
import { MongoClient } from "mongodb"
import { insertOrReplace, type Keyed } from "./BareMongo.js"
import { type StoredDocument, sinkDocuments } from "./Dataset.js"
import { childConfig, emit } from "./Protocol.js"

export interface BaselineBConfig {
  readonly uri: string
  readonly database: string
  readonly collection: string
  readonly seed: number
  readonly records: number
  readonly farLimit: number | undefined
  readonly batchSize: number
  readonly lanes: number
  readonly writeConcern: { readonly w: number | "majority"; readonly journal: boolean }
}

const main = async () => {
  const config = childConfig<BaselineBConfig>()
  const docs = sinkDocuments(config.seed, config.records, config.batchSize, config.farLimit)
  const batches: StoredDocument[][] = []
  for (let i = 0; i < docs.length; i += config.batchSize) batches.push(docs.slice(i, i + config.batchSize))

  const client = new MongoClient(config.uri, { maxPoolSize: config.lanes + 2 })
  await client.connect()
  const collection = client.db(config.database).collection<Keyed>(config.collection)
  const options = { ordered: false, writeConcern: config.writeConcern }
  let inserted = 0
  let replaced = 0

  const insert = async (batch: StoredDocument[]) => {
    const written = await insertOrReplace(collection, batch, options)
    inserted += written.inserted
    replaced += written.replaced
  }

  let next = 0
  const lane = async () => {
    while (next < batches.length) await insert(batches[next++]!)
  }
  emit("start", { documents: docs.length })
  const started = performance.now()
  await Promise.all(Array.from({ length: config.lanes }, lane))
  const seconds = (performance.now() - started) / 1000
  emit("done", { documents: docs.length, inserted, replaced, seconds })
  await client.close()
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`baseline B: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`)
    process.exit(1)
  },
)
