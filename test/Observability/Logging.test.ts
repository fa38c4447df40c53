import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import type { LogLevelName } from "../../src/Config/AppConfig.js"
import { effectLevel } from "../../src/Observability/Logging.js"
import { captureLogs, parseJsonLines } from "./support.js"

const batch = {
  correlation_id: "orders-2-100-199",
  topic: "orders",
  partition: 2,
  offsets: "100-199",
}

const everyLevel = Effect.all([
  Effect.logDebug("debug line"),
  Effect.logInfo("info line"),
  Effect.logWarning("warning line"),
  Effect.logError("error line"),
])

describe("Logging", () => {
  it.effect("JSON: one object per line with message, level, timestamp and annotations", () =>
    Effect.gen(function* () {
      const { lines } = yield* captureLogs(
        Effect.logInfo("batch written").pipe(Effect.annotateLogs(batch), Effect.withLogSpan("batch")),
      )
      assert.strictEqual(lines.length, 1)
      assert.notInclude(lines[0]!, "\n")
      const [line] = parseJsonLines(lines)
      assert.strictEqual(line!.message, "batch written")
      assert.strictEqual(line!.level, "INFO")
      assert.isFalse(Number.isNaN(Date.parse(line!.timestamp)))
      assert.match(line!.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
      assert.deepStrictEqual(line!.annotations, batch)
      assert.property(line!.spans, "batch")
    }),
  )

  it.effect("JSON: a failure's cause is one field of the same line", () =>
    Effect.gen(function* () {
      const { lines } = yield* captureLogs(
        Effect.fail(new Error("boom")).pipe(
          Effect.catchCause((cause) => Effect.logError("the service stopped after a failure", cause)),
        ),
      )
      const [line] = parseJsonLines(lines)
      assert.strictEqual(line!.level, "ERROR")
      assert.include(line!.cause, "boom")
    }),
  )

  it.effect("text: logfmt, key=value pairs on one line, values with spaces quoted", () =>
    Effect.gen(function* () {
      const { lines } = yield* captureLogs(
        Effect.logWarning("sink stalled").pipe(Effect.annotateLogs(batch)),
        { level: "INFO", format: "text" },
      )
      assert.strictEqual(lines.length, 1)
      const line = lines[0]!
      assert.match(line, /^timestamp=\S+ level=WARN fiber=#\d+ message="sink stalled" /)
      assert.include(line, "correlation_id=orders-2-100-199")
      assert.include(line, "topic=orders")
      assert.include(line, "partition=2")
      assert.include(line, "offsets=100-199")
    }),
  )

  const passes: Record<LogLevelName, ReadonlyArray<string>> = {
    DEBUG: ["DEBUG", "INFO", "WARN", "ERROR"],
    INFO: ["INFO", "WARN", "ERROR"],
    WARNING: ["WARN", "ERROR"],
    ERROR: ["ERROR"],
  }
  for (const [level, expected] of Object.entries(passes) as Array<[LogLevelName, ReadonlyArray<string>]>) {
    it.effect(
      `LOGGING__LEVEL=${level} maps to ${effectLevel[level]} and lets ${expected.join(", ")} through`,
      () =>
        Effect.gen(function* () {
          const { lines } = yield* captureLogs(everyLevel, { level, format: "json" })
          assert.deepStrictEqual(
            parseJsonLines(lines).map((l) => l.level),
            expected,
          )
        }),
    )
  }

  it.effect("scrubs the configured secrets from every line, in both formats", () =>
    Effect.gen(function* () {
      const secret = "Fake-Secret-0xC0FFEE"
      const leak = Effect.logError(`driver said: auth failed for ${secret}`).pipe(
        Effect.annotateLogs({ detail: { password: secret } }),
      )
      for (const format of ["json", "text"] as const) {
        const { lines } = yield* captureLogs(leak, { level: "INFO", format }, [secret])
        assert.strictEqual(lines.length, 1)
        assert.notInclude(lines[0]!, secret)
        assert.include(lines[0]!, "<redacted>")
      }
    }),
  )
})
