/**
 * The replay command's flags, as effect/cli reads them (text), and what they mean once checked
 * against the settings: every problem of the command line is reported at once.
 */
import { Option } from "effect"
import type { AppSettings } from "../Config/AppConfig.js"
import { type Position, parsePosition } from "./Range.js"

/** The flags as given (Cli.ts). */
export interface ReplayFlags {
  readonly topic: Option.Option<string>
  readonly group: Option.Option<string>
  readonly from: Option.Option<string>
  readonly to: Option.Option<string>
  readonly reason: ReadonlyArray<string>
  readonly key: ReadonlyArray<string>
  readonly dryRun: boolean
  readonly maxReplays: Option.Option<string>
  readonly examples: Option.Option<string>
}

export interface ReplayOptions {
  /** The dead-letter topic read. */
  readonly topic: string
  /** The replay's own consumer group: where it remembers what has been replayed. */
  readonly group: string
  readonly from: Position | undefined
  readonly to: Position | undefined
  readonly reasons: ReadonlyArray<string>
  readonly keys: ReadonlyArray<string>
  readonly dryRun: boolean
  readonly maxReplays: number
  readonly examples: number
}

/** The default loop limit: a record is replayed at most this many times. */
export const defaultMaxReplays = 3
export const defaultExamples = 3

/** The group a replay remembers its progress in, unless --group names another. */
export const defaultGroup = (settings: AppSettings) => `${settings.kafka.consumerGroup}.replay`

const count = (
  flag: string,
  given: Option.Option<string>,
  fallback: number,
  bounds: { readonly min: number; readonly max: number },
  problems: Array<string>,
): number => {
  if (Option.isNone(given)) return fallback
  const text = given.value.trim()
  const n = Number(text)
  if (!/^\d+$/.test(text) || n < bounds.min || n > bounds.max) {
    problems.push(
      `--${flag}: expected a whole number from ${bounds.min} to ${bounds.max}, got "${given.value}"`,
    )
    return fallback
  }
  return n
}

const position = (flag: string, given: Option.Option<string>, problems: Array<string>) => {
  if (Option.isNone(given)) return undefined
  const parsed = parsePosition(flag, given.value)
  if (typeof parsed === "string") {
    problems.push(parsed)
    return undefined
  }
  return parsed
}

const nonEmpty = (flag: string, values: ReadonlyArray<string>, problems: Array<string>) => {
  if (values.some((v) => v.trim() === "")) problems.push(`--${flag}: expected a value, got an empty one`)
  return values.map((v) => v.trim()).filter((v) => v !== "")
}

/** The options, or every problem with the flags. */
export const resolveFlags = (
  flags: ReplayFlags,
  settings: AppSettings,
): { readonly options: ReplayOptions } | { readonly problems: ReadonlyArray<string> } => {
  const problems: Array<string> = []
  const topic = Option.getOrElse(flags.topic, () => settings.kafka.topicDlq).trim()
  if (topic === "") problems.push("--topic: expected a topic name, got an empty one")
  const group = Option.getOrElse(flags.group, () => defaultGroup(settings)).trim()
  if (group === "") problems.push("--group: expected a consumer group name, got an empty one")
  else if (group === settings.kafka.consumerGroup)
    problems.push(
      `--group: "${group}" is the service's own group (KAFKA__CONSUMER_GROUP); a replay needs a group of its own`,
    )
  const from = position("--from", flags.from, problems)
  const to = position("--to", flags.to, problems)
  if (from?._tag === "Time" && to?._tag === "Time" && to.at < from.at)
    problems.push("--to: the time is before --from's: the range is empty")
  const options: ReplayOptions = {
    topic,
    group,
    from,
    to,
    reasons: nonEmpty("reason", flags.reason, problems),
    keys: nonEmpty("key", flags.key, problems),
    dryRun: flags.dryRun,
    maxReplays: count("max-replays", flags.maxReplays, defaultMaxReplays, { min: 1, max: 1000 }, problems),
    examples: count("examples", flags.examples, defaultExamples, { min: 0, max: 100 }, problems),
  }
  return problems.length > 0 ? { problems } : { options }
}
