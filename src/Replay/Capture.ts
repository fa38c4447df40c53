/**
 * What became of each replayed dead letter, seen from the pipeline's own outputs as they pass:
 * the dead letters it writes (stage and reasons), the records its sinks take, and the records
 * its transforms mark as duplicates. Keyed by the dead letter's partition and offset
 * (`<partition>/<offset>`), which the pipeline's messages carry as their source coordinates. The
 * batch's counts come from the processor; this says which record is which, for the counts by
 * reason and the examples.
 */
import type { Message } from "kafkajs"
import type { JsonObject, Reason } from "../Domain/Record.js"
import { header } from "../Pipeline/Messages.js"
import { headerText, positionIn, reasonsOf } from "./Headers.js"

export type Outcome = "written" | "still_invalid" | "duplicate" | "filtered" | "already_committed"

export interface TurnedAway {
  readonly stage: string
  readonly reasons: ReadonlyArray<Reason>
  /** `pipeline.error.message`: every reason in one line (what shows when the reasons' header was cut). */
  readonly text: string
}

export const positionOf = (partition: number, offset: string) => `${partition}/${offset}`

export class Capture {
  private readonly deadLetters = new Map<string, TurnedAway>()
  private readonly written = new Map<string, JsonObject>()
  /** Records the transforms saw; true when one marked it a duplicate. */
  private readonly seen = new Map<string, boolean>()

  /** Dead letters on their way to the topic (the same one sent again replaces the first). */
  readonly deadLettersSent = (messages: ReadonlyArray<Message>): void => {
    for (const m of messages) {
      const position = positionIn(m)
      if (position === undefined) continue
      this.deadLetters.set(position, {
        stage: headerText(m.headers, header.errorStage) ?? "?",
        reasons: reasonsOf(headerText(m.headers, header.errorReasons)),
        text: headerText(m.headers, header.errorMessage) ?? "",
      })
    }
  }

  readonly sinkWrote = (partition: number, records: ReadonlyArray<{ offset: string; value: JsonObject }>) => {
    for (const r of records) this.written.set(positionOf(partition, r.offset), r.value)
  }

  readonly transformed = (partition: number, records: ReadonlyArray<{ readonly status: string }>) => {
    for (const r of records) {
      if (!("offset" in r) || typeof r.offset !== "string") continue
      const position = positionOf(partition, r.offset)
      this.seen.set(position, this.seen.get(position) === true || r.status === "duplicate")
    }
  }

  readonly outcomeOf = (position: string): Outcome => {
    if (this.deadLetters.has(position)) return "still_invalid"
    if (this.written.has(position)) return "written"
    const seen = this.seen.get(position)
    if (seen === undefined) return "already_committed"
    return seen ? "duplicate" : "filtered"
  }

  readonly turnedAway = (position: string): TurnedAway | undefined => this.deadLetters.get(position)
  readonly writtenValue = (position: string): JsonObject | undefined => this.written.get(position)

  /** The batch is accounted for: what it left here is needed no more. */
  readonly forget = (positions: ReadonlyArray<string>): void => {
    for (const p of positions) {
      this.deadLetters.delete(p)
      this.written.delete(p)
      this.seen.delete(p)
    }
  }
}
