/**
 * The `generate` command: options in, messages out, a summary on stderr at the end, whether
 * the run finished, failed or was stopped with Ctrl-C (which is a normal end: exit code 0).
 */
import { randomInt } from "node:crypto"
import { Cause, Effect, Exit, Runtime } from "effect"
import { type Env, parse, usage } from "./Options.js"
import { Output, type OutputError } from "./Output.js"
import { run, type Terminal } from "./Run.js"
import { emptyStats, summary } from "./Stats.js"

const randomSeed = (): number => randomInt(0, 4_294_967_296)

const messageOf = (cause: unknown): string => (cause instanceof Error ? cause.message : String(cause))

/** One line a user can act on, rather than a stack. */
export const describe = (error: OutputError): string => {
  switch (error._tag) {
    case "KafkaConnectError":
      return `cannot connect to Kafka at ${error.brokers.join(",")}: ${messageOf(error.cause)}`
    case "KafkaProduceError":
      return `sending to topic ${error.topic} failed: ${messageOf(error.cause)}`
    case "FileWriteError":
      return `cannot write ${error.path}: ${messageOf(error.cause)}`
    case "OutputClosed":
      return "the output was closed"
  }
}

export const main = (argv: ReadonlyArray<string>, env: Env, terminal: Terminal) =>
  Effect.gen(function* () {
    const command = yield* Effect.fromResult(parse(argv, env, randomSeed)).pipe(
      Effect.tapError((e) => Effect.sync(() => terminal.err(`generate: ${e.message}\n\n${usage}\n`))),
    )
    if (command._tag === "Help") return terminal.out(`${usage}\n`)
    const { options } = command
    const stats = emptyStats()
    yield* run(options, stats, terminal).pipe(
      Effect.provide(Output.layer(options.output)),
      Effect.tapError((e) => Effect.sync(() => terminal.err(`generate: ${describe(e)}\n`))),
      Effect.ensuring(Effect.sync(() => terminal.err(`${summary(stats, options.records.seed)}\n`))),
    )
  }).pipe(
    Effect.tapCause((cause) =>
      Cause.hasFails(cause) || Cause.hasInterruptsOnly(cause)
        ? Effect.void
        : Effect.sync(() => terminal.err(`generate: unexpected failure\n${Cause.pretty(cause)}\n`)),
    ),
  )

/** Exit codes: 0 done or stopped by a signal, 2 bad options, 1 anything else. */
export const teardown = (exit: Exit.Exit<unknown, unknown>, onExit: (code: number) => void): void => {
  if (Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause)) onExit(0)
  else Runtime.defaultTeardown(exit, onExit)
}
