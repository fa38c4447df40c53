/**
 * Structured logs: one JSON object per line on stdout by default (LOGGING__FORMAT=json), or
 * logfmt text (LOGGING__FORMAT=text). LOGGING__LEVEL maps to Effect's levels:
 * DEBUG -> Debug, INFO -> Info, WARNING -> Warn, ERROR -> Error.
 * Batch logs carry their correlation id, topic, partition and offsets as annotations.
 */
import { Layer, Logger, type LogLevel, References } from "effect"
import type { LogLevelName } from "../Config/AppConfig.js"

export const effectLevel: Record<LogLevelName, LogLevel.LogLevel> = {
  DEBUG: "Debug",
  INFO: "Info",
  WARNING: "Warn",
  ERROR: "Error",
}

export const layer = (settings: { readonly level: LogLevelName; readonly format: "json" | "text" }) =>
  Layer.mergeAll(
    Logger.layer([settings.format === "json" ? Logger.consoleJson : Logger.consoleLogFmt]),
    Layer.succeed(References.MinimumLogLevel, effectLevel[settings.level]),
  )
