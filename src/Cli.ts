/**
 * The command line, built with effect/cli: `run` (the default) starts the service, `validate`
 * checks the settings and the pipeline file, `plan` prints the DAG, `replay` sends dead letters
 * through the pipeline again. Exit codes: 0 success or clean stop, 1 runtime failure, 2 bad
 * configuration or usage.
 */
import { Data, Effect, Option, Runtime } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { type AppSettings, ConfigProblems, decodeSettings, readEnvironment } from "./Config/AppConfig.js"
import { loadPipelineFile } from "./Config/PipelineFile.js"
import type { PipelineSpec } from "./Config/PipelineSpec.js"
import { describePlan } from "./Config/PlanText.js"
import { SinkSettingsError, sinkSettingsProblems } from "./Config/SinkChecks.js"
import * as Usage from "./Config/Usage.js"
import { defaultExamples, defaultMaxReplays, type ReplayFlags } from "./Replay/Options.js"

/** A problem the user has to fix before the service can start; exits with code 2 and one clear message. */
export class StartupError extends Data.TaggedError("StartupError")<{ readonly text: string }> {
  override readonly [Runtime.errorExitCode] = 2
  override readonly [Runtime.errorReported] = false
  override get message() {
    return this.text
  }
}

/** What each command does: main.ts supplies the service, tests record which one ran. */
export interface Actions<E, R> {
  readonly run: Effect.Effect<void, E, R>
  readonly validate: Effect.Effect<void, E, R>
  readonly plan: (file: string | undefined) => Effect.Effect<void, E, R>
  readonly replay: (flags: ReplayFlags) => Effect.Effect<void, E, R>
}

// Read as text and checked together afterwards (Replay/Options.ts), so that one pass names every problem.
const text = (name: string, metavar: string, description: string) =>
  Flag.String(name).pipe(Flag.withMetavar(metavar), Flag.withDescription(description), Flag.optional)
const repeated = (name: string, metavar: string, description: string) =>
  Flag.String(name).pipe(Flag.withMetavar(metavar), Flag.withDescription(description), Flag.atLeast(0))

const replayFlags = {
  topic: text("topic", "TOPIC", "the dead-letter topic to read [KAFKA__TOPIC_DLQ]"),
  group: text(
    "group",
    "GROUP",
    "the consumer group that remembers what has been replayed [<KAFKA__CONSUMER_GROUP>.replay]",
  ),
  from: text(
    "from",
    "WHERE",
    "first dead letter: a time (2026-12-03T10:00:00Z: written at or after it), an offset for every partition (120) or offsets per partition (0:120,2:95) [where the group is]",
  ),
  to: text(
    "to",
    "WHERE",
    "last dead letter, included: a time (written at or before it) or offsets as for --from [the end of the topic when the replay starts]",
  ),
  reason: repeated(
    "reason",
    "R",
    "only dead letters turned away for R: a stage (validation, parse, mongodb_sink, kafka_sink, task), a rule (Range, json), an error kind (record), a task (quality), a field (amount) or task.field; repeat for any of several [all]",
  ),
  key: repeated("key", "KEY", "only dead letters with this record key; repeat for several [all]"),
  dryRun: Flag.Boolean("dry-run").pipe(
    Flag.withDescription(
      "run the dead letters through the pipeline, write nothing, commit nothing: print what would happen",
    ),
    Flag.withDefault(false),
  ),
  maxReplays: text(
    "max-replays",
    "N",
    `a record replayed N times is replayed no more (the loop limit) [${defaultMaxReplays}]`,
  ),
  examples: text("examples", "N", `examples of each outcome in the report [${defaultExamples}]`),
}

const replayDescription = [
  "send dead letters through the current pipeline file and settings again, to MongoDB, the sink",
  "topic and the dead-letter topic as the service would. Its consumer group remembers how far it",
  "has read, and the ledger (topic <dead-letter topic>.replayed) every dead letter it replayed: a",
  "second run writes nothing. Exit codes: 0 done or stopped by SIGTERM/SIGINT, 1 runtime failure,",
  "2 bad configuration or usage",
].join("\n  ")

const runDescription =
  "start the service (the default): Kafka -> DAG of tasks -> MongoDB + sink topic, dead letters on the DLQ"

export const command = <E, R>(actions: Actions<E, R>) =>
  Command.make("node dist/main.js", {}, () => actions.run).pipe(
    Command.withDescription(
      [
        "The pipeline service; without a subcommand it runs the service.",
        "Settings come from the environment and .env (see .env.example); the pipeline from",
        "PIPELINE__FILE (default config/pipeline.yaml).",
        "Exit codes: 0 success or clean stop, 1 runtime failure, 2 bad configuration or usage.",
      ].join("\n  "),
    ),
    Command.withSubcommands([
      Command.make("run", {}, () => actions.run).pipe(Command.withDescription(runDescription)),
      Command.make("validate", {}, () => actions.validate).pipe(
        Command.withDescription(
          "check the settings (environment and .env) and the pipeline file; print every problem; exit 0 or 2",
        ),
      ),
      Command.make(
        "plan",
        {
          file: Argument.String("file").pipe(
            Argument.withDescription(
              "the pipeline file; PIPELINE__FILE (default config/pipeline.yaml) when omitted",
            ),
            Argument.optional,
          ),
        },
        ({ file }) => actions.plan(Option.getOrUndefined(file)),
      ).pipe(Command.withDescription("print the pipeline's DAG: tiers and a Mermaid graph")),
      Command.make("replay", replayFlags, (flags) => actions.replay(flags)).pipe(
        Command.withDescription(replayDescription),
        Command.withShortDescription(
          "send dead letters through the pipeline again (after a rule or the data was fixed); --dry-run first",
        ),
        Command.withExamples(({ commandPath }) => {
          const replay = commandPath.join(" ")
          return [
            {
              command: `${replay} --dry-run`,
              description: "what replaying every dead letter not replayed yet would do",
            },
            {
              command: `${replay} --reason quantity`,
              description: "replay those turned away for the quantity field",
            },
            {
              command: `${replay} --from 2026-12-03T10:00:00Z --to 2026-12-03T12:00:00Z`,
              description: "those written to the dead-letter topic between 10:00 and 12:00 UTC",
            },
            { command: `${replay} --key evt-42 --key evt-43`, description: "those of two record keys" },
          ]
        }),
      ),
    ]),
  )

/**
 * Parses `argv` and runs the chosen action. Help goes to `out`; a wrong command line prints
 * its problems and the help on `err` and fails with a UsageError (exit code 2).
 */
export const runCommandLine = <E, R>(
  argv: ReadonlyArray<string>,
  actions: Actions<E, R>,
  streams: Usage.Streams,
) =>
  // --version is not among the built-in flags (see Config/Usage.ts), so the version is never shown.
  Command.runWith(command(actions), { version: "" })(argv).pipe(
    Usage.usageErrorExit2,
    Effect.provide(Usage.layer(streams)),
  )

const toStartupError = (e: { readonly message: string }) => new StartupError({ text: e.message })

export const loadSpec = (file: string): Effect.Effect<PipelineSpec, StartupError> =>
  loadPipelineFile(file).pipe(Effect.mapError(toStartupError))

/**
 * Settings and pipeline, both checked, every problem of both reported together. The settings
 * are environment variables, not flags, and checked here rather than by effect/cli: its
 * environment fallbacks stop at the first bad value, and one pass must name every problem.
 */
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
    const problems = sinkSettingsProblems(settings.success, spec.success)
    if (problems.length > 0)
      return yield* new StartupError({ text: new SinkSettingsError({ problems }).message })
    return { settings: settings.success, spec: spec.success }
  })

export const printPlan = (spec: PipelineSpec) =>
  Effect.sync(() => process.stdout.write(`${describePlan(spec)}\n`))

export { ConfigProblems }
