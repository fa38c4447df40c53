/**
 * The sending loop: records drawn from the seeded stream in batches, paced by the rate
 * schedule against the Effect clock (so tests drive it with TestClock), counted once the
 * output acknowledged them, with a progress line on the side.
 */
import { Clock, Duration, Effect } from "effect"
import { changeStream } from "./Debezium.js"
import type { Options } from "./Options/Options.js"
import { Output } from "./Output/Output.js"
import { nextStep } from "./RateSchedule.js"
import { type GeneratedRecord, generate } from "./Records.js"
import { countDelivered, progressLine, type Stats } from "./Stats.js"

/** Where progress goes: a live line on a terminal, a line every few seconds otherwise. */
export interface Terminal {
  readonly out: (text: string) => void
  readonly err: (text: string) => void
  /** stderr is a TTY: redraw one progress line in place. */
  readonly live: boolean
}

const LIVE_INTERVAL = Duration.seconds(1)
const LOG_INTERVAL = Duration.seconds(5)
const CLEAR_LINE = "\r\x1b[2K"

const take = (records: Iterator<GeneratedRecord>, n: number): Array<GeneratedRecord> => {
  const out: Array<GeneratedRecord> = []
  for (let i = 0; i < n; i++) {
    const next = records.next()
    if (next.done === true) break
    out.push(next.value)
  }
  return out
}

const progress = (stats: Stats, terminal: Terminal) =>
  Effect.sleep(terminal.live ? LIVE_INTERVAL : LOG_INTERVAL).pipe(
    Effect.andThen(
      Effect.sync(() =>
        terminal.err(terminal.live ? `${CLEAR_LINE}${progressLine(stats)}` : `${progressLine(stats)}\n`),
      ),
    ),
    Effect.forever,
  )

/**
 * Sends until the total is reached, the reader goes away, or the fiber is interrupted
 * (Ctrl-C). A batch in flight is never abandoned: the write is uninterruptible, so what the
 * summary counts is what the output acknowledged.
 */
export const run = Effect.fnUntraced(function* (options: Options, stats: Stats, terminal: Terminal) {
  const output = yield* Output
  const plan = { rate: options.rate, total: options.total, maxBatch: options.batchSize }
  const records =
    options.debezium === undefined
      ? generate(options.records)
      : changeStream(options.records.seed, options.records.baseTime, options.debezium)
  const start = yield* Clock.currentTimeMillis
  const elapsed = Effect.gen(function* () {
    stats.elapsedMillis = (yield* Clock.currentTimeMillis) - start
  })
  yield* Effect.forkChild(progress(stats, terminal))
  const deliver = (batch: ReadonlyArray<GeneratedRecord>) =>
    Effect.gen(function* () {
      const refused = yield* output.write(batch)
      countDelivered(stats, refused.length === 0 ? batch : batch.filter((r) => !refused.includes(r)))
      stats.errors += refused.length
      yield* elapsed
    })
  let drawn = 0
  const loop = Effect.gen(function* () {
    while (true) {
      const now = yield* Clock.currentTimeMillis
      const step = nextStep(plan, start, drawn, now)
      if (step._tag === "Done") return
      if (step._tag === "Wait") {
        yield* Effect.sleep(Duration.millis(step.millis))
        continue
      }
      const batch = take(records, step.count)
      drawn += batch.length
      // Counted inside the uninterruptible region: a pending interrupt fires as soon as it ends.
      yield* Effect.uninterruptible(deliver(batch))
    }
  })
  yield* loop.pipe(
    Effect.catchTag("OutputClosed", () => Effect.void),
    Effect.ensuring(elapsed),
    Effect.ensuring(Effect.sync(() => terminal.live && terminal.err(CLEAR_LINE))),
  )
})
