/**
 * Where the messages go, from --output and its companions (--file, --bootstrap-servers,
 * --topic, --partitions-key) with KAFKA__* defaults; SASL credentials come only from the
 * environment and stay redacted.
 */
import { Redacted } from "effect"
import type { Problems, Source, ValueOption } from "./Values.js"

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

/** The target, or undefined after adding its problems to `problems`. */
export const resolveOutput = (
  source: (option: ValueOption, variable?: string) => Source | undefined,
  env: Env,
  problems: Problems,
): OutputTarget | undefined => {
  const outputSource = source("output")
  const kind =
    outputSource === undefined
      ? "console"
      : problems.oneOf(outputSource, ["console", "kafka", "file"], undefined)
  switch (kind) {
    case undefined:
      return undefined
    case "console":
      return { _tag: "console" }
    case "file": {
      const file = source("file")
      if (file === undefined || file.raw.trim() === "") {
        problems.add("--file", "--output file needs --file PATH")
        return undefined
      }
      return { _tag: "file", path: file.raw }
    }
    case "kafka": {
      const servers = source("bootstrap-servers", "KAFKA__BOOTSTRAP_SERVERS")
      const brokers = (servers?.raw ?? "")
        .split(",")
        .map((b) => b.trim())
        .filter((b) => b !== "")
      if (brokers.length === 0)
        problems.add(
          "--bootstrap-servers",
          "--output kafka needs --bootstrap-servers (or KAFKA__BOOTSTRAP_SERVERS)",
        )
      const topic = source("topic", "KAFKA__TOPIC_SOURCE")?.raw.trim() ?? ""
      if (topic === "") problems.add("--topic", "--output kafka needs --topic (or KAFKA__TOPIC_SOURCE)")
      if (brokers.length === 0 || topic === "") return undefined
      const key = source("partitions-key")?.raw.trim()
      const username = env.KAFKA__API_KEY
      const password = env.KAFKA__API_SECRET
      return {
        _tag: "kafka",
        brokers,
        topic,
        partitionsKey: key === undefined || key === "" || key === "event_id" ? undefined : key,
        sasl:
          username !== undefined && username !== "" && password !== undefined
            ? { username, password: Redacted.make(password) }
            : undefined,
      }
    }
  }
}
