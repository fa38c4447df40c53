/**
 * Reading a pipeline definition from disk: YAML (.yaml, .yml) or JSON (.json), chosen by the
 * file's extension, then decoded and checked by PipelineSpec. Syntax errors are problems of
 * the definition (PipelineSpecError, with line and column); a file that cannot be read at all
 * is a PipelineFileError.
 */
import { readFile } from "node:fs/promises"
import { extname } from "node:path"
import { Data, Effect, Result } from "effect"
import { parseDocument } from "yaml"
import { type PipelineSpec, PipelineSpecError, validatePipelineSpec } from "./PipelineSpec.js"

export class PipelineFileError extends Data.TaggedError("PipelineFileError")<{
  readonly path: string
  readonly reason: string
  readonly cause?: unknown
}> {
  override get message(): string {
    return `cannot read pipeline definition ${this.path}: ${this.reason}`
  }
}

export type PipelineFormat = "yaml" | "json"

export const formatOf = (path: string): PipelineFormat | undefined => {
  const extension = extname(path).toLowerCase()
  if (extension === ".yaml" || extension === ".yml") return "yaml"
  if (extension === ".json") return "json"
  return undefined
}

/** Parses definition text; syntax errors come back as problems located by line and column. */
export const parsePipelineText = (
  text: string,
  format: PipelineFormat,
  source = "(inline)",
): Result.Result<unknown, PipelineSpecError> => {
  if (format === "json") {
    try {
      return Result.succeed(JSON.parse(text))
    } catch (error) {
      // The engine's message may quote the text around the error, newlines included.
      const message = (error instanceof Error ? error.message : String(error)).replace(/\s+/g, " ")
      return Result.fail(
        new PipelineSpecError({ source, problems: [{ path: "", message: `invalid JSON: ${message}` }] }),
      )
    }
  }
  const document = parseDocument(text, { uniqueKeys: true })
  if (document.errors.length > 0) {
    const problems = document.errors.map((error) => {
      const position = error.linePos?.[0]
      // The message repeats the position and adds a code frame; the path carries the position.
      const message = error.message.split("\n")[0]!.replace(/ at line \d+, column \d+:?$/, "")
      return {
        path: position === undefined ? "" : `line ${position.line}, column ${position.col}`,
        message: `invalid YAML: ${message}`,
      }
    })
    return Result.fail(new PipelineSpecError({ source, problems }))
  }
  return Result.succeed(document.toJS({ maxAliasCount: 100 }))
}

export const loadPipelineFile = (
  path: string,
): Effect.Effect<PipelineSpec, PipelineFileError | PipelineSpecError> =>
  Effect.gen(function* () {
    const format = formatOf(path)
    if (format === undefined) {
      return yield* new PipelineFileError({ path, reason: "unknown file type; use .yaml, .yml or .json" })
    }
    const text = yield* Effect.tryPromise({
      try: () => readFile(path, "utf8"),
      catch: (cause) =>
        new PipelineFileError({
          path,
          reason: cause instanceof Error ? cause.message : String(cause),
          cause,
        }),
    })
    const parsed = yield* Effect.fromResult(parsePipelineText(text, format, path))
    return yield* Effect.fromResult(validatePipelineSpec(parsed, path))
  })
