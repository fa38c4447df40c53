/**
 * What the service's and the generator's command lines share on top of effect/cli: where its
 * help and its errors are written, which built-in flags exist, and exit code 2 for a usage
 * error (effect/cli's own ShowHelp exits with 1).
 */
import { NodeServices } from "@effect/platform-node"
import { Data, Effect, Layer, Runtime } from "effect"
import { CliConfig, CliError, CliOutput, GlobalFlag } from "effect/cli"

export interface Streams {
  readonly out: (text: string) => void
  readonly err: (text: string) => void
}

/** The command line was wrong; effect/cli has printed the problems and the help. Exit code 2. */
export class UsageError extends Data.TaggedError("UsageError")<{
  readonly problems: ReadonlyArray<string>
}> {
  override readonly [Runtime.errorExitCode] = 2
  override readonly [Runtime.errorReported] = false
  override get message() {
    return this.problems.join("\n")
  }
}

/**
 * effect/cli's presentation with one change: a wrong command line has its help and its
 * problems on stderr, so that stdout carries only what was asked for (the records of the
 * generator, the plan of `plan`).
 */
const presenter = (streams: Streams): CliOutput.Presenter => ({
  present: (event) =>
    CliOutput.Formatter.use((formatter) =>
      Effect.sync(() => {
        switch (event._tag) {
          case "Help":
            return streams.out(`${formatter.formatHelpDoc(event.helpDoc)}\n`)
          case "Version":
            return streams.out(`${formatter.formatVersion(event.name, event.version)}\n`)
          case "InvalidInvocation":
            return streams.err(
              `${formatter.formatHelpDoc(event.helpDoc)}\n${formatter.formatErrors(event.errors)}\n`,
            )
        }
      }),
    ),
})

/**
 * --help (-h) is the only built-in flag: the service's log level is LOGGING__LEVEL, so
 * --log-level would be a second, conflicting source; the wizard prompts on a terminal, which
 * neither a service nor a generator writing to a pipe should do; version and shell
 * completions are not offered.
 */
export const layer = (streams: Streams) =>
  Layer.mergeAll(
    CliOutput.layerPresenter(presenter(streams)),
    CliConfig.layer({ builtIns: [GlobalFlag.Help] }),
    NodeServices.layer,
  )

const isShowHelp = <E>(error: E): error is Extract<E, CliError.ShowHelp> =>
  CliError.isCliError(error) && error._tag === "ShowHelp"

/** effect/cli's ShowHelp with problems (already printed) becomes a UsageError; help alone is a success. */
export const usageErrorExit2 = <A, E, R>(self: Effect.Effect<A, E, R>) =>
  Effect.catchIf(self, isShowHelp, (help) =>
    help.errors.length === 0
      ? Effect.void
      : Effect.fail(new UsageError({ problems: help.errors.map((e) => e.message) })),
  )
