/** Runs effects through the service's own log layer and hands back the lines it wrote. */
import { Effect, Layer } from "effect"
import { TestConsole } from "effect/testing"
import * as Logging from "../../src/Observability/Logging.js"

export const captureLogs = <A, E>(
  effect: Effect.Effect<A, E>,
  settings: Logging.LogSettings = { level: "DEBUG", format: "json" },
  secrets: ReadonlyArray<string> = [],
): Effect.Effect<{ readonly result: A; readonly lines: ReadonlyArray<string> }, E> =>
  Effect.gen(function* () {
    const result = yield* effect.pipe(Effect.provide(Logging.layer(settings, secrets)))
    const lines = (yield* TestConsole.logLines).map(String)
    return { result, lines }
    // Fresh: a memoized TestConsole would carry the lines of the previous capture.
  }).pipe(Effect.provide(Layer.fresh(TestConsole.layer)))

export interface JsonLine {
  readonly message: unknown
  readonly level: string
  readonly timestamp: string
  readonly cause?: string
  readonly annotations: Record<string, unknown>
  readonly spans: Record<string, number>
}

export const parseJsonLines = (lines: ReadonlyArray<string>): ReadonlyArray<JsonLine> =>
  lines.map((line) => JSON.parse(line) as JsonLine)
