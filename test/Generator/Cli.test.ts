import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit } from "effect"
import { main, teardown } from "../../src/Generator/Cli.js"
import { changeStream } from "../../src/Generator/Debezium.js"
import { defaultRecordOptions, encode, generate } from "../../src/Generator/Records.js"
import type { Terminal } from "../../src/Generator/Run.js"
import { KafkaProduceError } from "../../src/Kafka/Errors.js"

const dir = mkdtempSync(join(tmpdir(), "generator-cli-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const capture = () => {
  const out: Array<string> = []
  const err: Array<string> = []
  const terminal: Terminal = { out: (s) => out.push(s), err: (s) => err.push(s), live: false }
  return { terminal, out: () => out.join(""), err: () => err.join("") }
}

const exitCode = (exit: Exit.Exit<unknown, unknown>): number => {
  let code = -1
  teardown(exit, (c) => {
    code = c
  })
  return code
}

describe("Cli", () => {
  it.effect("--help prints the usage on stdout", () =>
    Effect.gen(function* () {
      const io = capture()
      yield* main(["--help"], {}, io.terminal)
      assert.include(io.out(), "USAGE\n  generate [flags]")
      assert.include(io.out(), "--rate N")
      assert.include(io.out(), "TEST_DATA__RATE")
      assert.strictEqual(io.err(), "")
    }),
  )

  it.effect("a bad option prints the problem and the usage on stderr and exits 2", () =>
    Effect.gen(function* () {
      const io = capture()
      const exit = yield* Effect.exit(main(["--pattern", "weird"], {}, io.terminal))
      assert.strictEqual(exitCode(exit), 2)
      assert.include(io.err(), "USAGE\n  generate [flags]")
      assert.match(io.err(), /\nERROR\n {2}--pattern: 'weird' is not one of valid, invalid, mixed\n$/)
      assert.strictEqual(io.out(), "")
    }),
  )

  it.effect("every bad value, from flags and from the environment, is reported at once, exit 2", () =>
    Effect.gen(function* () {
      const io = capture()
      const argv = ["--rate", "abc", "--seed", "-1", "--output", "kafka", "--batch-size", "0"]
      const exit = yield* Effect.exit(main(argv, { TEST_DATA__PATTERN: "random" }, io.terminal))
      assert.strictEqual(exitCode(exit), 2)
      for (const text of [
        "--rate: 'abc' is not a number",
        "TEST_DATA__PATTERN: 'random' is not one of valid, invalid, mixed",
        "--seed: '-1' is not an integer",
        "--batch-size: '0' is not an integer",
        "--output kafka needs --bootstrap-servers",
        "--output kafka needs --topic",
      ])
        assert.include(io.err(), text)
      assert.include(io.err(), "\nERRORS\n")
      assert.strictEqual(io.out(), "")
    }),
  )

  it.effect("every unknown flag, missing value and stray argument is reported at once, exit 2", () =>
    Effect.gen(function* () {
      const io = capture()
      const exit = yield* Effect.exit(main(["--nope", "1", "--total", "--rate", "--fast"], {}, io.terminal))
      assert.strictEqual(exitCode(exit), 2)
      for (const text of [
        "Unrecognized flag: --nope",
        "Missing value for flag --total",
        "Missing value for flag --rate",
        "Unrecognized flag: --fast",
      ])
        assert.include(io.err(), text)
      assert.strictEqual(io.out(), "")
      const stray = capture()
      assert.strictEqual(exitCode(yield* Effect.exit(main(["stray"], {}, stray.terminal))), 2)
      assert.include(stray.err(), 'Unexpected positional argument: "stray"')
    }),
  )

  it.effect("writes JSON lines to a file, the same records as the library, and a summary", () =>
    Effect.gen(function* () {
      const io = capture()
      const path = join(dir, "out.jsonl")
      const argv = ["--output", "file", "--file", path, "--rate", "0", "--total", "1200", "--seed", "5"]
      argv.push("--malformed-ratio", "0.02", "--batch-size", "100")
      yield* main(argv, {}, io.terminal)
      const lines = readFileSync(path, "utf8").split("\n")
      assert.strictEqual(lines.pop(), "")
      const expected = [...generate({ ...defaultRecordOptions, seed: 5, malformedRatio: 0.02 }, 0, 1200)].map(
        (r) => encode(r).toString(),
      )
      assert.deepStrictEqual(lines, expected)
      assert.match(io.err(), /generate: done, 1200 messages in [\d.]+ s \(([\d.]+|-) msg\/s\), seed 5\n/)
      assert.match(io.err(), /\n {2}malformed {3}\d+\n/)
    }),
  )

  it.effect("--format debezium writes the change stream, a tombstone as null, and counts it by op", () =>
    Effect.gen(function* () {
      const io = capture()
      const path = join(dir, "changes.jsonl")
      const argv = ["--output", "file", "--file", path, "--rate", "0", "--total", "600", "--seed", "5"]
      argv.push("--format", "debezium", "--rows", "20", "--delete-ratio", "0.2")
      yield* main(argv, {}, io.terminal)
      const lines = readFileSync(path, "utf8").split("\n")
      assert.strictEqual(lines.pop(), "")
      const messages = [
        ...changeStream(
          5,
          defaultRecordOptions.baseTime,
          { rows: 20, deleteRatio: 0.2, tombstoneRatio: 1 },
          600,
        ),
      ]
      assert.deepStrictEqual(
        lines,
        messages.map((m) => (m.kind === "tombstone" ? "null" : encode(m).toString())),
      )
      const count = (kind: string) => messages.filter((m) => m.kind === kind).length
      assert.isAbove(count("tombstone"), 0)
      const counted = { creates: "create", updates: "update", deletes: "delete", tombstones: "tombstone" }
      for (const [label, kind] of Object.entries(counted))
        assert.match(io.err(), new RegExp(`\n {2}${label} +${count(kind)}\n`))
    }),
  )

  it.effect("a file that cannot be opened is a FileWriteError, reported in one line, exit 1", () =>
    Effect.gen(function* () {
      const io = capture()
      const path = join(dir, "missing", "dir", "out.jsonl")
      const exit = yield* Effect.exit(
        main(["--output", "file", "--file", path, "--total", "1"], {}, io.terminal),
      )
      assert.strictEqual(exitCode(exit), 1)
      assert.include(io.err(), `generate: cannot write ${path}: ENOENT`)
      assert.include(io.err(), "generate: done, 0 messages")
    }),
  )

  it.effect("what it prints on stderr is scrubbed of KAFKA__API_SECRET, however short", () =>
    Effect.gen(function* () {
      const secret = "FAKE-generator-secret-5e1c"
      const failed = capture()
      const path = join(dir, secret, "out.jsonl")
      const env = { KAFKA__API_KEY: "key", KAFKA__API_SECRET: secret }
      assert.strictEqual(
        exitCode(
          yield* Effect.exit(
            main(["--output", "file", "--file", path, "--total", "1"], env, failed.terminal),
          ),
        ),
        1,
      )
      assert.include(failed.err(), `generate: cannot write ${join(dir, "<redacted>", "out.jsonl")}: ENOENT`)
      assert.notInclude(failed.err(), secret)
      const usage = capture()
      const short = { KAFKA__API_KEY: "key", KAFKA__API_SECRET: "q9", TEST_DATA__RATE: "q9" }
      assert.strictEqual(exitCode(yield* Effect.exit(main([], short, usage.terminal))), 2)
      assert.include(usage.err(), "TEST_DATA__RATE: '<redacted>' is not a number")
      assert.notMatch(usage.err(), /\bq9\b/)
    }),
  )

  it("exit codes: 0 done or interrupted, 2 usage, 1 other failures", () => {
    assert.strictEqual(exitCode(Exit.void), 0)
    assert.strictEqual(exitCode(Exit.interrupt(1)), 0)
    assert.strictEqual(
      exitCode(Exit.fail(new KafkaProduceError({ topic: "t", messages: 1, kind: "transient", cause: "x" }))),
      1,
    )
    assert.strictEqual(exitCode(Exit.failCause(Cause.die(new Error("boom")))), 1)
  })
})
