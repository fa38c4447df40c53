/**
 * Loaded into the pipeline process with `node --import` (see bench/investigate/README.md): times
 * every MongoDB write (insertMany, and the replace bulks) and every Kafka request of the
 * service's clients (kafkajs' own request events: Produce, Fetch, OffsetCommit, ...), and
 * appends them to BENCH_IO_FILE as JSON lines (pid, operation, start in epoch ms, duration in
 * ms), flushed four times a second. With it a slow second of a run can be pinned on the server
 * that was slow. It changes nothing the clients do.
 *
 * Node runs this file with its built-in type stripping, so it uses erasable syntax only.
 */
import { appendFileSync } from "node:fs"
import { Kafka, type RequestEvent } from "kafkajs"
import { Collection } from "mongodb"

const install = (file: string): void => {
  let lines: string[] = []
  const flush = () => {
    if (lines.length === 0) return
    const text = lines.join("")
    lines = []
    try {
      appendFileSync(file, text)
    } catch {
      // A diagnostic never takes the service down.
    }
  }
  setInterval(flush, 250).unref()
  process.on("exit", flush)
  const note = (op: string, start: number, ms: number, extra: Record<string, number>) => {
    lines.push(`${JSON.stringify({ pid: process.pid, op, start, ms, ...extra })}\n`)
  }

  const proto = Collection.prototype
  const insertMany = proto.insertMany
  proto.insertMany = async function (this: Collection, docs, options) {
    const start = Date.now()
    try {
      return await insertMany.call(this, docs, options)
    } finally {
      note("mongodb insertMany", start, Date.now() - start, { n: docs.length })
    }
  }
  const bulkWrite = proto.bulkWrite
  proto.bulkWrite = async function (this: Collection, operations, options) {
    // insertMany runs through bulkWrite: only the replace bulks are timed here.
    const replaces = operations.some((op) => typeof op === "object" && op !== null && "replaceOne" in op)
    const start = Date.now()
    try {
      return await bulkWrite.call(this, operations, options)
    } finally {
      if (replaces) note("mongodb replace bulk", start, Date.now() - start, { n: operations.length })
    }
  }

  const request =
    (role: string) =>
    ({ payload }: RequestEvent): void =>
      note(`kafka ${role} ${payload.apiName}`, payload.sentAt, payload.duration, {
        pendingMs: payload.pendingDuration,
        bytes: payload.size,
      })
  const kafka = Kafka.prototype
  const producer = kafka.producer
  kafka.producer = function (this: Kafka, config) {
    const p = producer.call(this, config)
    p.on(p.events.REQUEST, request("producer"))
    return p
  }
  const consumer = kafka.consumer
  kafka.consumer = function (this: Kafka, config) {
    const c = consumer.call(this, config)
    c.on(c.events.REQUEST, request("consumer"))
    return c
  }
}

const file = process.env.BENCH_IO_FILE
if (file !== undefined && file !== "") install(file)
