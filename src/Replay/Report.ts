/**
 * The replay's accounts: every dead letter read is counted once, as passed over (and why) or as
 * replayed (and what it became), with the reasons behind both and a few examples of each
 * outcome. A progress line while it runs, and the report at the end.
 */
import type { KafkaMessage } from "kafkajs"
import type { Reason } from "../Domain/Record.js"
import type { BatchSummary } from "../Pipeline/Batch.js"
import type { Outcome, TurnedAway } from "./Capture.js"
import type { PassedOver } from "./Selection.js"

export interface Totals {
  read: number
  replayed: number
  written: number
  stillInvalid: number
  duplicates: number
  filtered: number
  /** exactly_once: written by this group's earlier run, in a transaction whose answer it never saw. */
  alreadyCommitted: number
  passedOver: Record<PassedOver, number>
}

export interface Example {
  /** `<topic>/<partition>@<offset>` of the dead letter. */
  readonly at: string
  readonly key: string
  readonly detail: string
}

const outcomes: ReadonlyArray<Outcome> = [
  "written",
  "still_invalid",
  "duplicate",
  "filtered",
  "already_committed",
]

const cut = (text: string, max: number) => (text.length > max ? `${text.slice(0, max - 1)}…` : text)

/** A reason as one line: `<stage> / <task>.<field> [<rule>]`. */
export const reasonLabel = (stage: string, reason: Reason): string =>
  `${stage} / ${reason.task}${reason.field === undefined ? "" : `.${reason.field}`} [${reason.rule}]`

const labelsOf = (
  stage: string | undefined,
  reasons: ReadonlyArray<Reason>,
  text: string,
): ReadonlyArray<string> =>
  reasons.length > 0
    ? [...new Set(reasons.map((r) => reasonLabel(stage ?? "?", r)))]
    : [`${stage ?? "?"} / ${cut(text, 60) || "(no reason given)"}`]

const bump = (map: Map<string, number>, key: string, n = 1) => map.set(key, (map.get(key) ?? 0) + n)

export class Tally {
  readonly totals: Totals = {
    read: 0,
    replayed: 0,
    written: 0,
    stillInvalid: 0,
    duplicates: 0,
    filtered: 0,
    alreadyCommitted: 0,
    passedOver: {
      not_dead_letter: 0,
      replayed: 0,
      truncated: 0,
      over_limit: 0,
      same_pipeline: 0,
      not_selected: 0,
    },
  }
  /** The reasons of the dead letters written again. */
  readonly stillInvalidBy = new Map<string, number>()
  /** What the replayed dead letters became, by the reason they had been dead-lettered for. */
  readonly replayedBy = new Map<string, Record<Outcome, number>>()
  /** The passed-over dead letters, by why and by reason. */
  readonly passedOverBy = new Map<string, number>()
  readonly examples = new Map<Outcome, Array<Example>>(outcomes.map((o) => [o, []]))

  constructor(
    private readonly topic: string,
    private readonly examplesPerOutcome: number,
  ) {}

  readonly passOver = (why: PassedOver, stage: string | undefined, reasons: ReadonlyArray<Reason>) => {
    this.totals.read++
    this.totals.passedOver[why]++
    if (why === "not_selected" || why === "not_dead_letter" || why === "replayed") return
    for (const label of labelsOf(stage, reasons, "")) bump(this.passedOverBy, `${why}: ${label}`)
  }

  /** A batch the pipeline has written: its counts, as the processor gives them. */
  readonly batch = (replayed: number, summary: BatchSummary | undefined) => {
    this.totals.read += replayed
    this.totals.replayed += replayed
    if (summary === undefined) return
    this.totals.written += summary.valid
    this.totals.stillInvalid += summary.deadLettered
    this.totals.duplicates += summary.duplicates
    this.totals.filtered += summary.filtered
    this.totals.alreadyCommitted += replayed - summary.consumed
  }

  /** One replayed dead letter: what it became, by what it had been turned away for. */
  readonly record = (
    message: KafkaMessage,
    partition: number,
    before: { readonly stage: string | undefined; readonly reasons: ReadonlyArray<Reason> },
    outcome: Outcome,
    after: { readonly turnedAway?: TurnedAway | undefined; readonly written?: unknown },
  ) => {
    for (const label of labelsOf(before.stage, before.reasons, "")) {
      const row = this.replayedBy.get(label) ?? {
        written: 0,
        still_invalid: 0,
        duplicate: 0,
        filtered: 0,
        already_committed: 0,
      }
      row[outcome]++
      this.replayedBy.set(label, row)
    }
    const turnedAway = after.turnedAway
    if (turnedAway !== undefined)
      for (const label of labelsOf(turnedAway.stage, turnedAway.reasons, turnedAway.text))
        bump(this.stillInvalidBy, label)
    const list = this.examples.get(outcome)!
    if (list.length >= this.examplesPerOutcome) return
    const detail =
      outcome === "written"
        ? cut(JSON.stringify(after.written ?? null), 160)
        : turnedAway !== undefined
          ? cut(`${turnedAway.stage}: ${turnedAway.text}`, 160)
          : cut(labelsOf(before.stage, before.reasons, "").join("; "), 160)
    list.push({
      at: `${this.topic}/${partition}@${message.offset}`,
      key: message.key === null ? "(none)" : cut(message.key.toString(), 60),
      detail,
    })
  }

  readonly passedOverTotal = () => Object.values(this.totals.passedOver).reduce((a, b) => a + b, 0)
}

/** The one-line progress report. */
export const progressLine = (tally: Tally, offsets: number, ratePerSecond: number) => {
  const t = tally.totals
  const share = offsets === 0 ? 100 : Math.min(100, Math.round((t.read * 100) / offsets))
  return `replay progress: ${t.read} dead letters read (~${share}% of the range), ${ratePerSecond.toFixed(1)}/s; ${t.replayed} replayed: ${t.written} written, ${t.stillInvalid} still invalid, ${t.duplicates} duplicates, ${t.filtered} filtered; ${tally.passedOverTotal()} passed over`
}

/** The totals as the summary log line carries them. */
export const summaryOf = (tally: Tally) => ({
  ...tally.totals,
  passedOver: { ...tally.totals.passedOver },
  passedOverTotal: tally.passedOverTotal(),
  stillInvalidByReason: Object.fromEntries(tally.stillInvalidBy),
  replayedByReason: Object.fromEntries(tally.replayedBy),
})

const words: Record<Outcome, { readonly live: string; readonly dry: string }> = {
  written: { live: "written to the sinks", dry: "would be written to the sinks" },
  still_invalid: {
    live: "still invalid: dead-lettered again",
    dry: "still invalid: would be dead-lettered again",
  },
  duplicate: { live: "duplicates", dry: "duplicates" },
  filtered: { live: "filtered", dry: "filtered" },
  already_committed: {
    live: "written already (exactly_once: by an earlier run of this group)",
    dry: "written already",
  },
}

const passedOverWords: Record<PassedOver, string> = {
  not_selected: "not selected (--reason/--key): a later replay may still take them",
  replayed: "replayed already (the replay ledger has them)",
  same_pipeline: "a replay's own dead letters, written with this same pipeline (they would end the same way)",
  over_limit: "replayed as many times as --max-replays allows",
  truncated: "not whole in the dead letter (cut to fit the topic): read the original from its source",
  not_dead_letter: "not a dead letter (no pipeline.error.stage header)",
}

const row = (n: number, text: string, indent = 2) => `${" ".repeat(indent)}${String(n).padStart(7)}  ${text}`

const sortedByCount = (map: ReadonlyMap<string, number>) =>
  [...map].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))

/** The report printed at the end: every dead letter read accounted for. */
export const reportText = (
  tally: Tally,
  options: {
    readonly dryRun: boolean
    readonly seconds: number
    readonly complete: boolean
    readonly maxReplays: number
  },
): string => {
  const t = tally.totals
  const mode = options.dryRun ? "dry" : "live"
  const lines = [
    options.dryRun ? "Dry run: nothing was written and nothing was committed." : "",
    `${t.read} dead letters read in ${options.seconds.toFixed(1)} s${options.complete ? "" : " (stopped before the end of the range: run the replay again to go on)"}`,
    row(t.replayed, options.dryRun ? "replayed through the pipeline (dry)" : "replayed through the pipeline"),
    row(t.written, words.written[mode], 4),
    row(t.stillInvalid, words.still_invalid[mode], 4),
    row(t.duplicates, words.duplicate[mode], 4),
    row(t.filtered, words.filtered[mode], 4),
    ...(t.alreadyCommitted > 0 ? [row(t.alreadyCommitted, words.already_committed[mode], 4)] : []),
    row(tally.passedOverTotal(), "passed over"),
    ...(Object.keys(passedOverWords) as ReadonlyArray<PassedOver>)
      .filter((why) => t.passedOver[why] > 0)
      .map((why) =>
        row(
          t.passedOver[why],
          why === "over_limit" ? `${passedOverWords[why]} (${options.maxReplays})` : passedOverWords[why],
          4,
        ),
      ),
  ].filter((l) => l !== "")
  if (tally.replayedBy.size > 0) {
    lines.push(
      "",
      "Replayed, by the reason they had been dead-lettered for (one with several reasons counts under each):",
    )
    const rows = [...tally.replayedBy].sort((a, b) => (a[0] < b[0] ? -1 : 1))
    for (const [label, counts] of rows) {
      const parts = outcomes.filter((o) => counts[o] > 0).map((o) => `${counts[o]} ${o.replace("_", " ")}`)
      lines.push(`  ${label}: ${parts.join(", ")}`)
    }
  }
  if (tally.stillInvalidBy.size > 0) {
    lines.push("", options.dryRun ? "Would still be invalid, by reason:" : "Still invalid, by reason:")
    for (const [label, n] of sortedByCount(tally.stillInvalidBy)) lines.push(row(n, label))
  }
  if (tally.passedOverBy.size > 0) {
    lines.push("", "Passed over, by reason:")
    for (const [label, n] of sortedByCount(tally.passedOverBy)) lines.push(row(n, label))
  }
  const shown = outcomes.filter((o) => (tally.examples.get(o)?.length ?? 0) > 0)
  if (shown.length > 0) {
    lines.push("", "Examples:")
    for (const outcome of shown) {
      lines.push(`  ${words[outcome][mode]}:`)
      for (const e of tally.examples.get(outcome)!) lines.push(`    ${e.at} key ${e.key}: ${e.detail}`)
    }
  }
  return `${lines.join("\n")}\n`
}
