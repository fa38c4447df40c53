/**
 * The two ends of a latency run outside the service: a steady load on the source topic (each
 * message stamped with its send time as its Kafka timestamp), and a reader of the sink topic
 * that notes the broker's append time of every record's message.
 */
import { type Consumer, Partitioners } from "kafkajs"
import { benchRecords, messageOf } from "./Dataset.js"
import { kafkaClient } from "./Infra.js"
import type { CpuSnapshot } from "./Proc.js"
import type { Run } from "./Run.js"

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export interface Sent {
  readonly at: number
  readonly measured: boolean
}

export interface Load {
  readonly leftOut: number
  readonly first: ReadonlyMap<string, Sent>
  readonly measured: number
  readonly before: CpuSnapshot
  readonly after: CpuSnapshot
}

/** Sends `rate` records/s for warm-up + measured seconds, in small sends every few milliseconds. */
export const steadyLoad = async (
  run: Run,
  topic: string,
  rate: number,
  snapshot: () => CpuSnapshot,
): Promise<Load> => {
  const { latencyWarmupSeconds, latencySeconds, records, seed } = run.options
  const producer = kafkaClient("bench-load").producer({
    idempotent: true,
    maxInFlightRequests: 1,
    createPartitioner: Partitioners.DefaultPartitioner,
  })
  await producer.connect()
  const stream = benchRecords(seed, records, Number.POSITIVE_INFINITY, run.farLimit)
  const first = new Map<string, Sent>()
  let sent = 0
  let measured = 0
  let lastIndex = records - 1
  let before: CpuSnapshot | undefined
  const start = performance.now()
  const measureFrom = start + latencyWarmupSeconds * 1000
  const end = measureFrom + latencySeconds * 1000
  try {
    for (let now = start; now < end; now = performance.now()) {
      const inWindow = now >= measureFrom
      if (inWindow && before === undefined) before = snapshot()
      const due = Math.floor((rate * (now - start)) / 1000) - sent
      if (due > 0) {
        const at = Date.now()
        const messages = []
        for (let i = 0; i < due; i++) {
          const record = stream.next().value
          if (record === undefined) break
          lastIndex = record.index
          messages.push(messageOf(record, at))
          if (record.key !== null && !first.has(record.key)) first.set(record.key, { at, measured: inWindow })
        }
        await producer.send({ topic, acks: -1, messages })
        sent += messages.length
        if (inWindow) measured += messages.length
      }
      await sleep(5)
    }
  } finally {
    await producer.disconnect()
  }
  return {
    leftOut: lastIndex + 1 - records - sent,
    first,
    measured,
    before: before ?? snapshot(),
    after: snapshot(),
  }
}

/** Reads the sink topic from the start: record key -> broker append time of its first message. */
export const watchSink = async (topic: string, group: string) => {
  const appended = new Map<string, number>()
  let seen = 0
  const consumer: Consumer = kafkaClient("bench-watch").consumer({ groupId: group })
  const joined = new Promise<void>((resolve) => consumer.on(consumer.events.GROUP_JOIN, () => resolve()))
  await consumer.connect()
  await consumer.subscribe({ topics: [topic], fromBeginning: true })
  await consumer.run({
    eachBatch: async ({ batch }) => {
      for (const m of batch.messages) {
        seen++
        const key = m.key?.toString("utf8")
        if (key !== undefined && !appended.has(key)) appended.set(key, Number(m.timestamp))
      }
    },
  })
  await joined
  return {
    appended,
    caughtUp: async (total: number, timeoutMs: number) => {
      const deadline = performance.now() + timeoutMs
      while (seen < total && performance.now() < deadline) await sleep(50)
    },
    stop: () => consumer.disconnect(),
  }
}
