/**
 * Line outputs: one message per line, JSON for records, the raw bytes for non-records (none of
 * which contains a newline) and `null` for a tombstone. A batch is one write; a full pipe is waited for.
 */
import { createWriteStream } from "node:fs"
import type { Writable } from "node:stream"
import { Effect } from "effect"
import type { GeneratedRecord } from "../Records.js"
import { FileWriteError, OutputClosed } from "./Errors.js"

const lines = (records: ReadonlyArray<GeneratedRecord>): string => {
  let out = ""
  for (const r of records) {
    out +=
      r.tombstone === true
        ? "null"
        : r.value instanceof Uint8Array
          ? Buffer.from(r.value).toString("utf8")
          : JSON.stringify(r.value)
    out += "\n"
  }
  return out
}

/** Writes and waits for the stream to accept the chunk, so memory stays bounded. */
const writeTo = <E>(
  stream: Writable,
  chunk: string,
  onError: (cause: unknown) => E,
): Effect.Effect<void, E> =>
  Effect.callback<void, E>((resume) => {
    stream.write(chunk, (error) => resume(error ? Effect.fail(onError(error)) : Effect.void))
  })

const isBrokenPipe = (cause: unknown): boolean =>
  typeof cause === "object" && cause !== null && "code" in cause && cause.code === "EPIPE"

export const consoleOutput = Effect.sync(() => {
  // A closed pipe is also reported as an 'error' event; without a listener node would crash.
  const ignore = () => {}
  process.stdout.on("error", ignore)
  return process.stdout
}).pipe(
  Effect.map((stdout) => ({
    write: (records: ReadonlyArray<GeneratedRecord>) =>
      writeTo(stdout, lines(records), (cause) =>
        isBrokenPipe(cause) ? new OutputClosed({ cause }) : new FileWriteError({ path: "<stdout>", cause }),
      ).pipe(Effect.as([])),
  })),
)

export const fileOutput = (path: string) =>
  Effect.acquireRelease(
    Effect.callback<Writable, FileWriteError>((resume) => {
      const stream = createWriteStream(path)
      stream.once("open", () => resume(Effect.succeed(stream)))
      stream.once("error", (cause) => resume(Effect.fail(new FileWriteError({ path, cause }))))
    }),
    (stream) => Effect.callback<void>((resume) => void stream.end(() => resume(Effect.void))),
  ).pipe(
    Effect.map((stream) => ({
      write: (records: ReadonlyArray<GeneratedRecord>) =>
        writeTo(stream, lines(records), (cause) => new FileWriteError({ path, cause })).pipe(Effect.as([])),
    })),
  )
