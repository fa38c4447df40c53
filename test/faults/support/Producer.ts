/**
 * A producer that keeps sending while a fault happens, as the upstream of a real pipeline
 * does: the records in order, `chunk` at a time at about `ratePerSecond`, each message keyed
 * and headed like the integration tests' `produce` (key = event_id, `x-index`, `x-defect`).
 *
 * A send that fails (the broker is down) is tried again, with a new client, until it goes
 * through; the records after it wait. A request the broker wrote but never acknowledged is
 * then on the topic twice: the source topic may hold more messages than were produced (the
 * count is reported), never fewer.
 */
import type { Message, Producer } from "kafkajs"
import { encode, type GeneratedRecord } from "../../../src/Generator/Records.js"
import { kafka } from "../../integration/support/Service.js"

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export const messageOf = (r: GeneratedRecord): Message => ({
  key: r.key,
  value: encode(r),
  headers: {
    "x-index": String(r.index),
    ...(r.defect === undefined ? {} : { "x-defect": r.defect }),
  },
})

/** Messages sent between two records of the stream (to a partition of their own choosing). */
export interface Insert {
  /** Sent right after this many records. */
  readonly after: number
  readonly messages: ReadonlyArray<Message>
}

export interface ContinuousProducer {
  /** Records of the stream acknowledged so far. */
  readonly sent: () => number
  /** Inserted messages acknowledged so far. */
  readonly inserted: () => number
  /** Sends that failed and were tried again. */
  readonly failedSends: () => number
  /** Resolves once everything is acknowledged; rejects after `stop()` or on a programming error. */
  readonly done: Promise<void>
  readonly stop: () => Promise<void>
}

export const startProducer = (
  topic: string,
  records: ReadonlyArray<GeneratedRecord>,
  { ratePerSecond, chunk = 100, insert }: { ratePerSecond: number; chunk?: number; insert?: Insert },
): ContinuousProducer => {
  let sent = 0
  let inserted = 0
  let failedSends = 0
  let stopped = false
  let producer: Producer | undefined

  const sendUntilAcknowledged = async (messages: Message[]) => {
    for (;;) {
      if (stopped) throw new Error("producer stopped")
      try {
        if (producer === undefined) {
          const p = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
          await p.connect()
          producer = p
        }
        await producer.send({ topic, acks: -1, messages })
        return
      } catch {
        failedSends++
        await producer?.disconnect().catch(() => undefined)
        producer = undefined
        await sleep(500)
      }
    }
  }

  const done = (async () => {
    try {
      for (let i = 0; i < records.length; i += chunk) {
        const began = Date.now()
        await sendUntilAcknowledged(records.slice(i, i + chunk).map(messageOf))
        sent += Math.min(chunk, records.length - i)
        if (insert !== undefined && sent >= insert.after && inserted === 0) {
          for (let j = 0; j < insert.messages.length; j += 500) {
            const part = insert.messages.slice(j, j + 500)
            await sendUntilAcknowledged([...part])
            inserted += part.length
          }
        }
        await sleep(Math.max(0, (chunk / ratePerSecond) * 1000 - (Date.now() - began)))
      }
    } finally {
      await producer?.disconnect().catch(() => undefined)
    }
  })()
  // Observed through `done` by the test; never an unhandled rejection on its own.
  done.catch(() => undefined)

  return {
    sent: () => sent,
    inserted: () => inserted,
    failedSends: () => failedSends,
    done,
    stop: async () => {
      stopped = true
      await done.catch(() => undefined)
    },
  }
}
