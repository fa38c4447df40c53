/**
 * The service proper (main.ts starts it, with its heap limits): parses the command line (Cli.ts),
 * checks settings and pipeline before anything connects,
 * then runs the service with its layers until SIGTERM/SIGINT (exit 0) or a failure (exit 1).
 * A second signal forces the exit.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Cause, Data, Effect, Exit, Layer, Option, Runtime } from "effect"
import { loadAll, loadSpec, printPlan, runCommandLine, StartupError } from "./Cli.js"
import { AppConfig, describeSettings, readEnvironment } from "./Config/AppConfig.js"
import * as HttpServer from "./Observability/HttpServer.js"
import * as Logging from "./Observability/Logging.js"
import { scrub, secretsOfEnv, secretsOfSettings } from "./Observability/Redaction.js"
import { infrastructure, runPipeline } from "./Pipeline/Service.js"
import { resolveFlags } from "./Replay/Options.js"
import { replay } from "./Replay/Replay.js"

/** The service failed and the failure is already in the logs (as JSON, scrubbed); exit 1. */
class ServiceFailed extends Data.TaggedError("ServiceFailed") {
  override readonly [Runtime.errorExitCode]: number = 1
  override readonly [Runtime.errorReported] = false
}

const run = Effect.gen(function* () {
  const { settings, spec } = yield* loadAll()
  const infra = infrastructure(Layer.succeed(AppConfig, settings))
  const app = Layer.mergeAll(infra, HttpServer.layer(settings.metrics).pipe(Layer.provide(infra)))
  return yield* Effect.logInfo("starting").pipe(
    Effect.annotateLogs({ settings: JSON.parse(describeSettings(settings)) as unknown }),
    Effect.andThen(runPipeline(spec).pipe(Effect.scoped, Effect.provide(app))),
    // Logged here, not by the runtime, so that the last line is JSON and scrubbed like the others.
    Effect.catchCause((cause) => {
      if (Cause.hasInterruptsOnly(cause)) return Effect.interrupt
      const error = Cause.findErrorOption(cause)
      // A port that cannot be had is said in one line, without a stack: nothing is wrong with the code.
      const logged =
        Option.isSome(error) && error.value instanceof HttpServer.MetricsPortUnavailable
          ? Effect.logError(error.value.message)
          : Effect.logError("the service stopped after a failure", cause)
      return logged.pipe(Effect.andThen(Effect.fail(new ServiceFailed())))
    }),
    Effect.provide(Logging.layer(settings.logging, secretsOfSettings(settings))),
  )
})

const main = runCommandLine(
  process.argv.slice(2),
  {
    run,
    validate: loadAll().pipe(
      Effect.andThen(({ spec }) =>
        Effect.sync(() =>
          process.stdout.write(`configuration and pipeline "${spec.name ?? "pipeline"}" are valid\n`),
        ),
      ),
    ),
    replay: (flags) =>
      Effect.gen(function* () {
        const { settings, spec } = yield* loadAll()
        const resolved = resolveFlags(flags, settings)
        if ("problems" in resolved) return yield* new StartupError({ text: resolved.problems.join("\n") })
        yield* replay(settings, spec, resolved.options).pipe(
          Effect.catchTags({
            ReplayProblems: (e) => Effect.fail(new StartupError({ text: e.message })),
            // Logged already, as the service's failures are.
            ReplayFailed: () => Effect.fail(new ServiceFailed()),
          }),
        )
      }),
    plan: (file) =>
      loadSpec(file ?? readEnvironment().PIPELINE__FILE ?? "config/pipeline.yaml").pipe(
        Effect.andThen(printPlan),
      ),
  },
  { out: (text) => process.stdout.write(text), err: (text) => process.stderr.write(text) },
)

// A second signal forces the exit. Signals within a second of the first are the same request
// delivered twice (a terminal's Ctrl-C reaches both npm and this process).
let firstSignalAt: number | undefined
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    const now = Date.now()
    if (firstSignalAt === undefined) firstSignalAt = now
    else if (now - firstSignalAt > 1000) {
      process.stderr.write(`second ${signal}: exiting now, without waiting for the batches in flight\n`)
      process.exit(130)
    }
  })
}

NodeRuntime.runMain(
  main.pipe(
    Effect.catchTag("StartupError", (e: StartupError) =>
      Effect.sync(() => process.stderr.write(`${scrub(e.message, secretsOfEnv(readEnvironment()))}\n`)).pipe(
        Effect.andThen(Effect.fail(e)),
      ),
    ),
  ),
  {
    // A stop by signal is a clean stop: exit 0 once the finalizers have run. Otherwise the
    // error's own exit code: 2 for StartupError and UsageError, 1 for the rest.
    teardown: (exit, onExit) =>
      Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause)
        ? onExit(0)
        : Runtime.defaultTeardown(exit, onExit),
  },
)
