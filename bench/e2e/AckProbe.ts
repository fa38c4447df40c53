/**
 * Loaded into the pipeline process by the latency run (`node --import`): notes the moment the
 * MongoDB server has acknowledged each document, as the driver hands the acknowledgement to
 * the service, as `<_id> <epoch ms>` lines in BENCH_ACK_FILE. It wraps Collection.insertMany
 * and Collection.bulkWrite and changes nothing they do; the cost is one Date.now() and one
 * small synchronous write per acknowledged bulk.
 *
 * Node runs this file with its built-in type stripping, so it uses erasable syntax only.
 */
import { openSync, writeSync } from "node:fs"
import { Collection, MongoBulkWriteError } from "mongodb"

const failedIndexes = (e: unknown): ReadonlySet<number> => {
  if (!(e instanceof MongoBulkWriteError)) return new Set()
  const errors = Array.isArray(e.writeErrors) ? e.writeErrors : [e.writeErrors]
  return new Set(errors.map((w) => w.index))
}

const idOf = (value: unknown): string | undefined => {
  if (typeof value !== "object" || value === null) return undefined
  const id: unknown = "_id" in value ? value._id : undefined
  return typeof id === "string" ? id : undefined
}

/**
 * The `_id` a replaceOne/updateOne filters on. Inserts are left to the insertMany wrapper
 * (insertMany runs through bulkWrite, so counting them here would count them twice).
 */
const idOfOperation = (op: unknown): string | undefined => {
  if (typeof op !== "object" || op === null) return undefined
  if (
    "replaceOne" in op &&
    typeof op.replaceOne === "object" &&
    op.replaceOne !== null &&
    "filter" in op.replaceOne
  )
    return idOf(op.replaceOne.filter)
  if (
    "updateOne" in op &&
    typeof op.updateOne === "object" &&
    op.updateOne !== null &&
    "filter" in op.updateOne
  )
    return idOf(op.updateOne.filter)
  return undefined
}

const install = (file: string): void => {
  const fd = openSync(file, "a")
  const note = (ids: ReadonlyArray<string | undefined>, failed: ReadonlySet<number>): void => {
    const at = Date.now()
    let text = ""
    ids.forEach((id, i) => {
      if (id !== undefined && !failed.has(i)) text += `${id} ${at}\n`
    })
    if (text !== "") writeSync(fd, text)
  }
  const proto = Collection.prototype
  const insertMany = proto.insertMany
  proto.insertMany = async function (this: Collection, docs, options) {
    try {
      const result = await insertMany.call(this, docs, options)
      note(docs.map(idOf), new Set())
      return result
    } catch (e) {
      // An unordered insert that failed on some documents (E11000) stored all the others.
      if (e instanceof MongoBulkWriteError) note(docs.map(idOf), failedIndexes(e))
      throw e
    }
  }
  const bulkWrite = proto.bulkWrite
  proto.bulkWrite = async function (this: Collection, operations, options) {
    const result = await bulkWrite.call(this, operations, options)
    // A failed update bulk is left out: FerretDB stops at its first error and may report a
    // wrong index, so the sink retries it in halves, and those halves are noted when they pass.
    note(operations.map(idOfOperation), new Set())
    return result
  }
}

const file = process.env.BENCH_ACK_FILE
if (file !== undefined && file !== "") install(file)
