import { assert, describe, it } from "@effect/vitest"
import { Redacted, Result } from "effect"
import { type Command, type Env, type Options, parse, type UsageError } from "../../src/Generator/Options.js"

const SEED = 1234
const run = (argv: ReadonlyArray<string>, env: Env = {}): Result.Result<Command, UsageError> =>
  parse(argv, env, () => SEED)

const options = (argv: ReadonlyArray<string>, env: Env = {}): Options => {
  const result = run(argv, env)
  if (Result.isFailure(result)) throw new Error(`unexpected usage error: ${result.failure.message}`)
  if (result.success._tag !== "Run") throw new Error("expected a run")
  return result.success.options
}

const failure = (argv: ReadonlyArray<string>, env: Env = {}): UsageError => {
  const result = run(argv, env)
  if (Result.isSuccess(result)) throw new Error(`expected a usage error for ${argv.join(" ")}`)
  return result.failure
}

describe("Options", () => {
  it("has the documented defaults", () => {
    const o = options([])
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

  it("reads every option, in both --name value and --name=value forms", () => {
    const o = options([
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
  })

  it("takes defaults from TEST_DATA__* and KAFKA__*, and argv wins", () => {
    const env = {
      TEST_DATA__RATE: "250",
      TEST_DATA__PATTERN: "valid",
      TEST_DATA__TOTAL_RECORDS: "42",
      TEST_DATA__INVALID_RATIO: "0.3",
      KAFKA__BOOTSTRAP_SERVERS: "b1:9092, b2:9092",
      KAFKA__TOPIC_SOURCE: "orders",
    }
    const fromEnv = options(["--output", "kafka"], env)
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
    const argvWins = options(
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
  })

  it("an empty or 'unlimited' total means no end", () => {
    assert.strictEqual(options(["--total", ""]).total, undefined)
    assert.strictEqual(options(["--total", "unlimited"]).total, undefined)
    assert.strictEqual(options([], { TEST_DATA__TOTAL_RECORDS: "" }).total, undefined)
  })

  it("keys Kafka messages by --partitions-key and uses SASL when an API key is set", () => {
    const o = options(
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
  })

  it("--help wins over everything else", () => {
    assert.deepStrictEqual(run(["--rate", "1", "--help"]), Result.succeed({ _tag: "Help" }))
    assert.deepStrictEqual(run(["-h"]), Result.succeed({ _tag: "Help" }))
  })

  describe("bad input is a usage error naming the option", () => {
    const cases: ReadonlyArray<readonly [ReadonlyArray<string>, Env, string]> = [
      [["--rate", "abc"], {}, "--rate"],
      [["--rate", "-1"], {}, "--rate"],
      [["--rate="], {}, "--rate"],
      [["--total", "1.5"], {}, "--total"],
      [["--total", "-3"], {}, "--total"],
      [["--pattern", "some"], {}, "--pattern"],
      [["--invalid-ratio", "1.5"], {}, "--invalid-ratio"],
      [["--duplicate-ratio", "x"], {}, "--duplicate-ratio"],
      [["--malformed-ratio", "-0.1"], {}, "--malformed-ratio"],
      [["--oversized-ratio", "2"], {}, "--oversized-ratio"],
      [["--oversized-bytes", "10"], {}, "--oversized-bytes"],
      [["--seed", "-1"], {}, "--seed"],
      [["--seed", "4294967296"], {}, "--seed"],
      [["--batch-size", "0"], {}, "--batch-size"],
      [["--output", "mongo"], {}, "--output"],
      [["--output", "file"], {}, "--file"],
      [["--output", "kafka", "--topic", "t"], {}, "--bootstrap-servers"],
      [["--output", "kafka", "--bootstrap-servers", "b:1"], {}, "--topic"],
      [["--nope", "1"], {}, "--nope"],
      [["--rate"], {}, "--rate"],
      [["--rate", "--total", "5"], {}, "--rate"],
      [["stray"], {}, "stray"],
      [["--duplicate-ratio", "0.5", "--invalid-ratio", "0.6"], {}, "--duplicate-ratio"],
      [[], { TEST_DATA__RATE: "fast" }, "TEST_DATA__RATE"],
      [[], { TEST_DATA__PATTERN: "random" }, "TEST_DATA__PATTERN"],
      [[], { TEST_DATA__TOTAL_RECORDS: "many" }, "TEST_DATA__TOTAL_RECORDS"],
      [[], { TEST_DATA__INVALID_RATIO: "10%" }, "TEST_DATA__INVALID_RATIO"],
    ]
    for (const [argv, env, option] of cases)
      it(`${argv.join(" ") || JSON.stringify(env)} -> ${option}`, () => {
        const error = failure(argv, env)
        assert.strictEqual(error._tag, "UsageError")
        assert.strictEqual(error.option, option)
        assert.include(error.message, option)
      })
  })

  it("usage errors exit with code 2 and are not logged again by the runtime", () => {
    const error = failure(["--rate", "abc"])
    assert.strictEqual(error["~effect/Runtime/errorExitCode"], 2)
    assert.strictEqual(error["~effect/Runtime/errorReported"], false)
  })
})
