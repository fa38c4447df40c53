/**
 * Where the messages go, from --output and its companions (--file, --bootstrap-servers,
 * --topic, --partitions-key) with KAFKA__* defaults; SASL credentials come only from the
 * environment and stay redacted.
 */
import { Redacted } from "effect"
import { oneOf, type Source, UsageError, type ValueOption } from "./Argv.js"

export type Env = Readonly<Record<string, string | undefined>>

export type OutputTarget =
  | { readonly _tag: "console" }
  | { readonly _tag: "file"; readonly path: string }
  | {
      readonly _tag: "kafka"
      readonly brokers: ReadonlyArray<string>
      readonly topic: string
      /** Dotted path of the field whose value keys the message; the event_id when unset. */
      readonly partitionsKey: string | undefined
      readonly sasl: { readonly username: string; readonly password: Redacted.Redacted<string> } | undefined
    }

export const resolveOutput = (
  source: (option: ValueOption, variable?: string) => Source | undefined,
  env: Env,
): OutputTarget | UsageError => {
  const outputSource = source("output")
  const kind =
    outputSource === undefined ? "console" : oneOf(outputSource, ["console", "kafka", "file"] as const)
  if (kind instanceof UsageError) return kind
  if (kind === "console") return { _tag: "console" }
  if (kind === "file") {
    const file = source("file")
    if (file === undefined || file.raw.trim() === "")
      return new UsageError({ option: "--file", message: "--output file needs --file PATH" })
    return { _tag: "file", path: file.raw }
  }
  const servers = source("bootstrap-servers", "KAFKA__BOOTSTRAP_SERVERS")
  const brokers = (servers?.raw ?? "")
    .split(",")
    .map((b) => b.trim())
    .filter((b) => b !== "")
  if (brokers.length === 0)
    return new UsageError({
      option: "--bootstrap-servers",
      message: "--output kafka needs --bootstrap-servers (or KAFKA__BOOTSTRAP_SERVERS)",
    })
  const topic = source("topic", "KAFKA__TOPIC_SOURCE")
  if (topic === undefined || topic.raw.trim() === "")
    return new UsageError({
      option: "--topic",
      message: "--output kafka needs --topic (or KAFKA__TOPIC_SOURCE)",
    })
  const key = source("partitions-key")?.raw.trim()
  const username = env.KAFKA__API_KEY
  const password = env.KAFKA__API_SECRET
  return {
    _tag: "kafka",
    brokers,
    topic: topic.raw.trim(),
    partitionsKey: key === undefined || key === "" || key === "event_id" ? undefined : key,
    sasl:
      username !== undefined && username !== "" && password !== undefined
        ? { username, password: Redacted.make(password) }
        : undefined,
  }
}
