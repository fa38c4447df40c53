/**
 * Structured logs: one JSON object per line on stdout by default (LOGGING__FORMAT=json), or
 * logfmt text (LOGGING__FORMAT=text). LOGGING__LEVEL maps to Effect's levels:
 * DEBUG -> Debug, INFO -> Info, WARNING -> Warn, ERROR -> Error.
 * Batch logs carry their correlation id, topic, partition and offsets as annotations.
 * Every line is scrubbed of the configured secrets before it is written (see Redaction).
 */
import { Layer, Logger, type LogLevel, References } from "effect"
import type { LogLevelName } from "../Config/AppConfig.js"
import { scrub } from "./Redaction.js"

export const effectLevel: Record<LogLevelName, LogLevel.LogLevel> = {
  DEBUG: "Debug",
  INFO: "Info",
  WARNING: "Warn",
  ERROR: "Error",
}

export interface LogSettings {
  readonly level: LogLevelName
  readonly format: "json" | "text"
}

/** The line formatter, scrubbed; exported so tests can check the exact text without a console. */
export const formatter = (format: LogSettings["format"], secrets: ReadonlyArray<string>) =>
  Logger.map(format === "json" ? Logger.formatJson : Logger.formatLogFmt, (line) => scrub(line, secrets))

export const layer = (settings: LogSettings, secrets: ReadonlyArray<string> = []) =>
  Layer.mergeAll(
    Logger.layer([Logger.withConsoleLog(formatter(settings.format, secrets))]),
    Layer.succeed(References.MinimumLogLevel, effectLevel[settings.level]),
  )
