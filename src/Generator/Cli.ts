/**
 * The `generate` command, built with effect/cli: options in, messages out, a summary on
 * stderr at the end, whether the run finished, failed or was stopped with Ctrl-C (which is a
 * normal end: exit code 0). Help goes to stdout; a wrong command line prints its problems and
 * the help on stderr and exits with code 2.
 */
import { randomInt } from "node:crypto"
import { Array as Arr, Cause, Effect, Exit, Logger, Record, Result, Runtime } from "effect"
import { CliError, Command } from "effect/cli"
import * as Usage from "../Config/Usage.js"
import { scrub, secretsOfEnv } from "../Observability/Redaction.js"
import { description, type Env, flags, type Options, resolve } from "./Options/Options.js"
import { isExpectedKafkaWarning } from "./Output/Kafka.js"
import { Output, type OutputError } from "./Output/Output.js"
import { run, type Terminal } from "./Run.js"
import { emptyStats, summary } from "./Stats.js"

const randomSeed = (): number => randomInt(0, 4_294_967_296)

const messageOf = (cause: unknown): string => (cause instanceof Error ? cause.message : String(cause))

/** One line a user can act on, rather than a stack. */
export const describe = (error: OutputError): string => {
  switch (error._tag) {
    case "KafkaConnectionError":
    case "KafkaProduceError":
      return error.message
    case "FileWriteError":
      return `cannot write ${error.path}: ${messageOf(error.cause)}`
    case "OutputClosed":
      return "the output was closed"
  }
}

/** Log lines (kafkajs' warnings and errors, forwarded by the Kafka client) go to stderr: stdout belongs to the records. */
const stderrLogger = (terminal: Terminal) =>
  Logger.layer([
    Logger.make(({ logLevel, message }) => {
      const text = Arr.ensure(message)
        .map((m) => (typeof m === "string" ? m : JSON.stringify(m)))
        .join(" ")
      if (!isExpectedKafkaWarning(text)) terminal.err(`generate: ${logLevel.toUpperCase()} ${text}\n`)
    }),
  ])

const generateWith = (options: Options, terminal: Terminal) =>
  Effect.gen(function* () {
    const stats = emptyStats()
    yield* run(options, stats, terminal).pipe(
      Effect.provide(Output.layer(options.output)),
      Effect.tapError((e) => Effect.sync(() => terminal.err(`generate: ${describe(e)}\n`))),
      Effect.ensuring(Effect.sync(() => terminal.err(`${summary(stats, options.records.seed)}\n`))),
      Effect.provide(stderrLogger(terminal)),
    )
  })

/**
 * effect/cli reads the flags and reports unknown flags, missing values and stray arguments
 * (all of them together). The values are checked by Options.resolve with their environment
 * defaults, because effect/cli stops at the first value it cannot parse and the generator
 * reports every bad value at once. Those problems fail the handler with effect/cli's ShowHelp,
 * which it presents like its own: the problems and the help.
 */
const command = <E, R>(
  env: Env,
  seed: () => number,
  generate: (options: Options) => Effect.Effect<void, E, R>,
) =>
  Command.make(
    "generate",
    flags,
    (values): Effect.Effect<void, E | CliError.ShowHelp, R> =>
      Result.match(resolve(Record.getSomes(values), env, seed), {
        onSuccess: generate,
        onFailure: (problems) =>
          Effect.fail(
            new CliError.ShowHelp({
              commandPath: ["generate"],
              errors: problems.map((p) => new CliError.ValidationError({ message: p.message })),
            }),
          ),
      }),
  ).pipe(Command.withDescription(description))

/** Parses `argv` with defaults from `env` and hands the options to `generate`. */
export const runCommandLine = <E, R>(
  argv: ReadonlyArray<string>,
  env: Env,
  streams: Usage.Streams,
  seed: () => number,
  generate: (options: Options) => Effect.Effect<void, E, R>,
) =>
  // --version is not among the built-in flags (see Config/Usage.ts), so the version is never shown.
  Command.runWith(command(env, seed, generate), { version: "" })(argv).pipe(
    Usage.usageErrorExit2,
    Effect.provide(Usage.layer(streams)),
  )

/**
 * What goes to stderr (errors, the client's log lines, an unexpected failure's Cause.pretty,
 * the usage's problems) is scrubbed of the secrets in the environment as the service scrubs
 * its own lines (Observability/Redaction.ts): the generator holds KAFKA__API_SECRET too.
 * stdout carries the records and the help, which hold no secret.
 */
export const main = (argv: ReadonlyArray<string>, env: Env, unscrubbed: Terminal) => {
  const secrets = secretsOfEnv(env)
  const terminal: Terminal = { ...unscrubbed, err: (text) => unscrubbed.err(scrub(text, secrets)) }
  return runCommandLine(argv, env, terminal, randomSeed, (options) => generateWith(options, terminal)).pipe(
    Effect.tapCause((cause) =>
      Cause.hasFails(cause) || Cause.hasInterruptsOnly(cause)
        ? Effect.void
        : Effect.sync(() => terminal.err(`generate: unexpected failure\n${Cause.pretty(cause)}\n`)),
    ),
  )
}

/** Exit codes: 0 done or stopped by a signal, 2 bad options, 1 anything else. */
export const teardown = (exit: Exit.Exit<unknown, unknown>, onExit: (code: number) => void): void => {
  if (Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause)) onExit(0)
  else Runtime.defaultTeardown(exit, onExit)
}
