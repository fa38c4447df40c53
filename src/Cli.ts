/**
 * The command line: `run` (the default) starts the service, `validate` checks the settings and
 * the pipeline file, `plan` prints the DAG. Exit codes: 0 success or clean stop, 1 runtime
 * failure, 2 bad configuration or usage.
 */
import { Data, Effect, Runtime } from "effect"
import { type AppSettings, ConfigProblems, decodeSettings, readEnvironment } from "./Config/AppConfig.js"
import { loadPipelineFile } from "./Config/PipelineFile.js"
import { describePlan } from "./Config/PipelinePlan.js"
import type { PipelineSpec } from "./Config/PipelineSpec.js"

export const usage = `usage: node dist/main.js [command] [--help]

commands:
  run        start the service (default): Kafka -> DAG of tasks -> MongoDB + sink topic, dead letters on the DLQ
  validate   check the settings (environment and .env) and the pipeline file; print every problem; exit 0 or 2
  plan       print the pipeline's DAG: tiers and a Mermaid graph (reads PIPELINE__FILE, or the file given)

settings come from the environment (see .env.example); the pipeline from PIPELINE__FILE (default config/pipeline.yaml)`

export type Command =
  | { readonly _tag: "Run" }
  | { readonly _tag: "Validate" }
  | { readonly _tag: "Plan"; readonly file: string | undefined }
  | { readonly _tag: "Help" }

/** A problem the user has to fix before the service can start; exits with code 2 and one clear message. */
export class StartupError extends Data.TaggedError("StartupError")<{ readonly text: string }> {
  override readonly [Runtime.errorExitCode] = 2
  override readonly [Runtime.errorReported] = false
  override get message() {
    return this.text
  }
}

export const parseArgs = (argv: ReadonlyArray<string>): Effect.Effect<Command, StartupError> => {
  if (argv.includes("--help") || argv.includes("-h")) return Effect.succeed({ _tag: "Help" })
  const [command = "run", ...rest] = argv
  switch (command) {
    case "run":
    case "validate":
      return rest.length === 0
        ? Effect.succeed({ _tag: command === "run" ? "Run" : "Validate" })
        : Effect.fail(
            new StartupError({ text: `${command} takes no arguments, got: ${rest.join(" ")}\n\n${usage}` }),
          )
    case "plan":
      return rest.length <= 1
        ? Effect.succeed({ _tag: "Plan", file: rest[0] })
        : Effect.fail(
            new StartupError({ text: `plan takes at most one file, got: ${rest.join(" ")}\n\n${usage}` }),
          )
    default:
      return Effect.fail(new StartupError({ text: `unknown command "${command}"\n\n${usage}` }))
  }
}

const toStartupError = (e: { readonly message: string }) => new StartupError({ text: e.message })

export const loadSpec = (file: string): Effect.Effect<PipelineSpec, StartupError> =>
  loadPipelineFile(file).pipe(Effect.mapError(toStartupError))

/** Settings and pipeline, both checked, every problem of both reported together. */
export const loadAll = (
  env = readEnvironment(),
): Effect.Effect<{ settings: AppSettings; spec: PipelineSpec }, StartupError> =>
  Effect.gen(function* () {
    const settings = yield* Effect.result(decodeSettings(env))
    const file =
      settings._tag === "Success"
        ? settings.success.pipeline.file
        : (env.PIPELINE__FILE ?? "config/pipeline.yaml")
    const spec = yield* Effect.result(loadSpec(file))
    const messages = [
      ...(settings._tag === "Failure" ? [settings.failure.message] : []),
      ...(spec._tag === "Failure" ? [spec.failure.message] : []),
    ]
    if (settings._tag === "Failure" || spec._tag === "Failure") {
      return yield* new StartupError({ text: messages.join("\n") })
    }
    return { settings: settings.success, spec: spec.success }
  })

export const printPlan = (spec: PipelineSpec) =>
  Effect.sync(() => process.stdout.write(`${describePlan(spec)}\n`))

export { ConfigProblems }
