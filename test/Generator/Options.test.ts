import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Redacted, Result, Runtime } from "effect"
import { UsageError } from "../../src/Config/Usage.js"
import { runCommandLine } from "../../src/Generator/Cli.js"
import {
  type Env,
  type Options,
  resolve,
  type UsageProblem,
  type Values,
} from "../../src/Generator/Options/Options.js"

const SEED = 1234

/** The command line as the generator reads it, with a `generate` that only keeps the options. */
const parse = (argv: ReadonlyArray<string>, env: Env = {}) =>
  Effect.gen(function* () {
    let options: Options | undefined
    const out: Array<string> = []
    const err: Array<string> = []
    const exit = yield* Effect.exit(
      runCommandLine(
        argv,
        env,
        { out: (text) => void out.push(text), err: (text) => void err.push(text) },
        () => SEED,
        (o) =>
          Effect.sync(() => {
            options = o
          }),
      ),
    )
    return { exit, options, out: out.join(""), err: err.join("") }
  })

const options = (argv: ReadonlyArray<string>, env: Env = {}) =>
  Effect.map(parse(argv, env), (r) => {
    if (r.options === undefined) throw new Error(`unexpected usage error: ${r.err}`)
    return r.options
  })

const resolved = (values: Values, env: Env = {}): Options => {
  const result = resolve(values, env, () => SEED)
  if (Result.isFailure(result)) throw new Error(`unexpected problems: ${JSON.stringify(result.failure)}`)
  return result.success
}

const problems = (values: Values, env: Env = {}): ReadonlyArray<UsageProblem> => {
  const result = resolve(values, env, () => SEED)
  if (Result.isSuccess(result)) throw new Error(`expected problems for ${JSON.stringify(values)}`)
  return result.failure
}

describe("Options", () => {
  it("has the documented defaults", () => {
    const o = resolved({})
    assert.strictEqual(o.rate, 10)
    assert.strictEqual(o.total, undefined)
    assert.strictEqual(o.batchSize, 500)
    assert.deepStrictEqual(o.output, { _tag: "console" })
    assert.strictEqual(o.records.pattern, "mixed")
    assert.strictEqual(o.records.invalidRatio, 0.1)
    assert.strictEqual(o.records.duplicateRatio, 0.05)
    assert.strictEqual(o.records.malformedRatio, 0)
    assert.strictEqual(o.records.oversizedRatio, 0)
    assert.strictEqual(o.records.oversizedBytes, 1_048_577)
    assert.strictEqual(o.records.seed, SEED)
  })

  it.effect("reads every option, in both --name value and --name=value forms", () =>
    Effect.gen(function* () {
      const o = yield* options([
        "--rate=0",
        "--total",
        "500",
        "--pattern",
        "INVALID",
        "--invalid-ratio",
        "0.2",
        "--duplicate-ratio=0",
        "--malformed-ratio",
        "0.01",
        "--oversized-ratio",
        "0.02",
        "--oversized-bytes",
        "4096",
        "--seed",
        "7",
        "--batch-size",
        "100",
        "--output",
        "file",
        "--file",
        "/tmp/out.jsonl",
      ])
      assert.strictEqual(o.rate, 0)
      assert.strictEqual(o.total, 500)
      assert.strictEqual(o.batchSize, 100)
      assert.deepStrictEqual(o.output, { _tag: "file", path: "/tmp/out.jsonl" })
      assert.deepInclude(o.records, {
        pattern: "invalid",
        invalidRatio: 0.2,
        duplicateRatio: 0,
        malformedRatio: 0.01,
        oversizedRatio: 0.02,
        oversizedBytes: 4096,
        seed: 7,
      })
    }),
  )

  it.effect("takes defaults from TEST_DATA__* and KAFKA__*, and argv wins", () =>
    Effect.gen(function* () {
      const env = {
        TEST_DATA__RATE: "250",
        TEST_DATA__PATTERN: "valid",
        TEST_DATA__TOTAL_RECORDS: "42",
        TEST_DATA__INVALID_RATIO: "0.3",
        KAFKA__BOOTSTRAP_SERVERS: "b1:9092, b2:9092",
        KAFKA__TOPIC_SOURCE: "orders",
      }
      const fromEnv = yield* options(["--output", "kafka"], env)
      assert.strictEqual(fromEnv.rate, 250)
      assert.strictEqual(fromEnv.total, 42)
      assert.strictEqual(fromEnv.records.pattern, "valid")
      assert.strictEqual(fromEnv.records.invalidRatio, 0.3)
      assert.deepStrictEqual(fromEnv.output, {
        _tag: "kafka",
        brokers: ["b1:9092", "b2:9092"],
        topic: "orders",
        partitionsKey: undefined,
        sasl: undefined,
      })
      const argvWins = yield* options(
        [
          "--rate",
          "5",
          "--total=",
          "--pattern",
          "mixed",
          "--output=kafka",
          "--topic",
          "t2",
          "--bootstrap-servers=b3:1",
        ],
        env,
      )
      assert.strictEqual(argvWins.rate, 5)
      assert.strictEqual(argvWins.total, undefined)
      assert.strictEqual(argvWins.records.pattern, "mixed")
      assert.deepInclude(argvWins.output, { brokers: ["b3:1"], topic: "t2" })
    }),
  )

  it.effect("an empty or 'unlimited' total means no end", () =>
    Effect.gen(function* () {
      assert.strictEqual((yield* options(["--total", ""])).total, undefined)
      assert.strictEqual((yield* options(["--total", "unlimited"])).total, undefined)
      assert.strictEqual(resolved({}, { TEST_DATA__TOTAL_RECORDS: "" }).total, undefined)
    }),
  )

  it.effect("keys Kafka messages by --partitions-key and uses SASL when an API key is set", () =>
    Effect.gen(function* () {
      const o = yield* options(
        [
          "--output",
          "kafka",
          "--bootstrap-servers",
          "b:9092",
          "--topic",
          "t",
          "--partitions-key",
          "customer.country",
        ],
        { KAFKA__API_KEY: "key", KAFKA__API_SECRET: "secret" },
      )
      if (o.output._tag !== "kafka") throw new Error("expected kafka")
      assert.strictEqual(o.output.partitionsKey, "customer.country")
      assert.strictEqual(o.output.sasl?.username, "key")
      assert.strictEqual(Redacted.value(o.output.sasl?.password ?? Redacted.make("")), "secret")
      assert.notInclude(JSON.stringify(o), "secret")
    }),
  )

  it.effect("--help wins over everything else, bad flags and values included", () =>
    Effect.gen(function* () {
      for (const argv of [["--rate", "1", "--help"], ["-h"], ["--rate", "abc", "--nope", "-h"]]) {
        const r = yield* parse(argv)
        assert.isTrue(Exit.isSuccess(r.exit), argv.join(" "))
        assert.isUndefined(r.options)
        assert.include(r.out, "USAGE")
        assert.strictEqual(r.err, "")
      }
    }),
  )

  describe("a bad value is a problem naming the flag or the variable", () => {
    const cases: ReadonlyArray<readonly [Values, Env, string]> = [
      [{ rate: "abc" }, {}, "--rate"],
      [{ rate: "-1" }, {}, "--rate"],
      [{ rate: "" }, {}, "--rate"],
      [{ total: "1.5" }, {}, "--total"],
      [{ total: "-3" }, {}, "--total"],
      [{ pattern: "some" }, {}, "--pattern"],
      [{ "invalid-ratio": "1.5" }, {}, "--invalid-ratio"],
      [{ "duplicate-ratio": "x" }, {}, "--duplicate-ratio"],
      [{ "malformed-ratio": "-0.1" }, {}, "--malformed-ratio"],
      [{ "oversized-ratio": "2" }, {}, "--oversized-ratio"],
      [{ "oversized-bytes": "10" }, {}, "--oversized-bytes"],
      [{ seed: "-1" }, {}, "--seed"],
      [{ seed: "4294967296" }, {}, "--seed"],
      [{ "batch-size": "0" }, {}, "--batch-size"],
      [{ output: "mongo" }, {}, "--output"],
      [{ output: "file" }, {}, "--file"],
      [{ output: "kafka", topic: "t" }, {}, "--bootstrap-servers"],
      [{ output: "kafka", "bootstrap-servers": "b:1" }, {}, "--topic"],
      [{ "duplicate-ratio": "0.5", "invalid-ratio": "0.6" }, {}, "--duplicate-ratio"],
      [{}, { TEST_DATA__RATE: "fast" }, "TEST_DATA__RATE"],
      [{}, { TEST_DATA__PATTERN: "random" }, "TEST_DATA__PATTERN"],
      [{}, { TEST_DATA__TOTAL_RECORDS: "many" }, "TEST_DATA__TOTAL_RECORDS"],
      [{}, { TEST_DATA__INVALID_RATIO: "10%" }, "TEST_DATA__INVALID_RATIO"],
    ]
    for (const [values, env, option] of cases)
      it(`${JSON.stringify(values)} ${JSON.stringify(env)} -> ${option}`, () => {
        const found = problems(values, env)
        assert.deepStrictEqual(
          found.map((p) => p.option),
          [option],
        )
        assert.include(found[0]?.message, option)
      })
  })

  it("every bad value is reported at once, flags and variables alike", () => {
    const found = problems(
      { rate: "abc", seed: "-1", "batch-size": "0", output: "kafka", "oversized-bytes": "10" },
      { TEST_DATA__PATTERN: "random", TEST_DATA__INVALID_RATIO: "10%" },
    )
    assert.deepStrictEqual(
      found.map((p) => p.option),
      [
        "--rate",
        "TEST_DATA__PATTERN",
        "TEST_DATA__INVALID_RATIO",
        "--oversized-bytes",
        "--seed",
        "--batch-size",
        "--bootstrap-servers",
        "--topic",
      ],
    )
  })

  it("the sum of the ratios is checked only once each ratio is valid", () => {
    const found = problems({ "duplicate-ratio": "0.9", "invalid-ratio": "2" })
    assert.deepStrictEqual(
      found.map((p) => p.option),
      ["--invalid-ratio"],
    )
  })

  describe("a wrong command line is effect/cli's usage error, exit code 2", () => {
    const cases: ReadonlyArray<readonly [ReadonlyArray<string>, string]> = [
      [["--nope", "1"], "Unrecognized flag: --nope"],
      [["--rate"], "Missing value for flag --rate"],
      [["--rate", "--total", "5"], "Missing value for flag --rate"],
      [["stray"], 'Unexpected positional argument: "stray"'],
      [["--rate", "1", "--rate", "2"], "Invalid value for flag --rate"],
      [["--pattern", "some"], "--pattern: 'some' is not one of valid, invalid, mixed"],
    ]
    for (const [argv, text] of cases)
      it.effect(`${argv.join(" ")} -> ${text}`, () =>
        Effect.gen(function* () {
          const r = yield* parse(argv)
          assert.isUndefined(r.options)
          assert.include(r.err, text)
          assert.include(r.err, "USAGE")
          assert.strictEqual(r.out, "")
          if (!Exit.isFailure(r.exit)) throw new Error("expected a failure")
          const error = Cause.squash(r.exit.cause)
          if (!(error instanceof UsageError)) throw new Error(`expected a UsageError, got ${String(error)}`)
          assert.strictEqual(error[Runtime.errorExitCode], 2)
          // effect/cli has printed it: the runtime must not log it again.
          assert.strictEqual(error[Runtime.errorReported], false)
        }),
      )
  })
})
