/**
 * The checks that need both the settings and the pipeline file: a MongoDB sink's own write
 * settings against the environment's (MONGODB__WRITE_MODEL, MONGODB__ON_EXISTING,
 * MONGODB__ON_TOMBSTONE, PIPELINE__SOURCE_FORMAT). They run at start with every other problem
 * (Cli.ts), and again when the pipeline file is reloaded, which keeps the running plan on a
 * problem.
 */
import { Data, Effect } from "effect"
import type { AppSettings } from "./AppConfig.js"
import type { PipelineSpec } from "./PipelineSpec.js"

export class SinkSettingsError extends Data.TaggedError("SinkSettingsError")<{
  readonly problems: ReadonlyArray<string>
}> {
  override get message(): string {
    return `the pipeline's sinks do not fit the settings:\n${this.problems.map((p) => `  - ${p}`).join("\n")}`
  }
}

const sameFields = (a: ReadonlyArray<string>, b: ReadonlyArray<string>): boolean =>
  a.length === b.length && a.every((field, i) => field === b[i])

export const sinkSettingsProblems = (settings: AppSettings, spec: PipelineSpec): ReadonlyArray<string> => {
  const problems: Array<string> = []
  for (const task of spec.tasks) {
    if (task.type !== "mongodb_sink") continue
    const own = task.settings
    const at = `task ${task.name} (mongodb_sink)`
    const model = own.writeModel ?? settings.mongodb.writeModel
    const modelFrom = own.writeModel === undefined ? "MONGODB__WRITE_MODEL" : "its writeModel"
    const onExisting = own.onExisting ?? settings.mongodb.onExisting
    if (onExisting === "dead_letter" && model !== "insert" && own.onExisting !== undefined)
      problems.push(
        `${at}: onExisting dead_letter applies to the insert write model only (${modelFrom} is ${model}, which writes over a stored key)`,
      )
    if (own.newerBy !== undefined && model === "insert")
      problems.push(
        `${at}: newerBy orders the versions a write replaces, and the insert write model (${modelFrom}) never replaces a stored document; remove newerBy or choose replace or merge`,
      )
    const documentKey =
      own.documentKey === undefined
        ? undefined
        : typeof own.documentKey === "string"
          ? [own.documentKey]
          : own.documentKey
    const deletes =
      settings.mongodb.onTombstone === "delete"
        ? "MONGODB__ON_TOMBSTONE=delete"
        : settings.pipeline.sourceFormat === "debezium"
          ? "PIPELINE__SOURCE_FORMAT=debezium"
          : undefined
    if (documentKey !== undefined && !sameFields(documentKey, spec.key) && deletes !== undefined)
      problems.push(
        `${at}: documentKey (${documentKey.join(", ")}) differs from the pipeline's key (${spec.key.join(", ")}), and with ${deletes} a delete carries only its message key, the record key: it could not find a document stored under another key. Leave documentKey out, or make it the pipeline's key`,
      )
  }
  return problems
}

/** Fails with every problem of the sinks' settings against the service's. */
export const checkSinkSettings = (
  settings: AppSettings,
  spec: PipelineSpec,
): Effect.Effect<void, SinkSettingsError> => {
  const problems = sinkSettingsProblems(settings, spec)
  return problems.length === 0 ? Effect.void : Effect.fail(new SinkSettingsError({ problems }))
}
