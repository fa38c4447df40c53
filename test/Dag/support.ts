import { Clock, Data, Effect } from "effect"
import * as PipelineContext from "../../src/Dag/PipelineContext.js"

export class Transient extends Data.TaggedError("Transient")<{ readonly attempt: number }> {
  readonly retryable = true
}

export class Permanent extends Data.TaggedError("Permanent")<{ readonly reason: string }> {
  readonly retryable = false
}

export const source: PipelineContext.SourceCoordinates = {
  topic: "orders",
  partition: 3,
  firstOffset: "100",
  lastOffset: "199",
}

export const makeContext = <P = null>(payload?: P) =>
  PipelineContext.make({ correlationId: "batch-42", source, payload: (payload ?? null) as P })

/** A timeline of "<virtual ms> <event>" lines, read from the TestClock. */
export const timeline = () => {
  const events: Array<string> = []
  const mark = (event: string) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.sync(() => void events.push(`${now} ${event}`)))
  /** Marks start and end around a sleep of `ms` virtual milliseconds. */
  const work = (name: string, ms: number) =>
    mark(`${name} start`).pipe(
      Effect.andThen(Effect.sleep(ms)),
      Effect.andThen(mark(`${name} end`)),
      Effect.as([name]),
    )
  return { events, mark, work }
}
