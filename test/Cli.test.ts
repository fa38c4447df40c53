import { spawn } from "node:child_process"
import { readFileSync } from "node:fs"
import { createServer } from "node:net"
import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Option, Runtime } from "effect"
import { runCommandLine } from "../src/Cli.js"

// The commands as users run them: a separate process, its environment under the test's control
// (ENV_FILE points nowhere, so a developer's .env cannot change the outcome).
const root = new URL("..", import.meta.url).pathname
const SECRET = "FAKE-api-secret-c11"
const PASSWORD = "FAKE-mongo-pw-c11"

const goodEnv = {
  KAFKA__BOOTSTRAP_SERVERS: "127.0.0.1:9092",
  KAFKA__TOPIC_SOURCE: "orders",
  KAFKA__TOPIC_SINK: "orders.clean",
  KAFKA__CONSUMER_GROUP: "pipeline",
  KAFKA__API_KEY: "key",
  KAFKA__API_SECRET: SECRET,
  MONGODB__CONNECTION_STRING: `mongodb://app:${PASSWORD}@127.0.0.1:27017/`,
  MONGODB__DATABASE: "shop",
  MONGODB__COLLECTION: "orders",
}

const baseEnv = { PATH: process.env.PATH ?? "", ENV_FILE: "/nonexistent/.env" }

const cli = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts", ...args], {
      cwd: root,
      env: { ...baseEnv, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString()
    })
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString()
    })
    child.once("close", (code) => resolve({ code, stdout, stderr }))
  })

const noSecrets = (text: string) => {
  assert.notInclude(text, SECRET)
  assert.notInclude(text, PASSWORD)
}

const closedPort = () =>
  new Promise<number>((resolve) => {
    const server = createServer()
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() => resolve(typeof address === "object" && address !== null ? address.port : 1))
    })
  })

/** Runs the command line with actions that only record which command ran, and what it printed. */
const parsed = (argv: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const ran: Array<string> = []
    const out: Array<string> = []
    const err: Array<string> = []
    const record = (name: string) => Effect.sync(() => void ran.push(name))
    const exit = yield* Effect.exit(
      runCommandLine(
        argv,
        {
          run: record("run"),
          validate: record("validate"),
          plan: (file) => record(`plan ${file ?? "-"}`),
          replay: (flags) =>
            record(
              `replay ${[
                Option.getOrElse(flags.topic, () => "-"),
                Option.getOrElse(flags.from, () => "-"),
                Option.getOrElse(flags.to, () => "-"),
                flags.reason.join("+") || "-",
                flags.key.join("+") || "-",
                flags.dryRun ? "dry" : "live",
                Option.getOrElse(flags.group, () => "-"),
                Option.getOrElse(flags.maxReplays, () => "-"),
              ].join(" ")}`,
            ),
        },
        { out: (text) => void out.push(text), err: (text) => void err.push(text) },
      ),
    )
    return { exit, ran, out: out.join(""), err: err.join("") }
  })

describe("command line arguments", () => {
  const cases: ReadonlyArray<[ReadonlyArray<string>, ReadonlyArray<string>]> = [
    [[], ["run"]],
    [["run"], ["run"]],
    [["validate"], ["validate"]],
    [["plan"], ["plan -"]],
    [["plan", "other.yaml"], ["plan other.yaml"]],
    [["replay"], ["replay - - - - - live - -"]],
    [
      [
        "replay",
        "--dry-run",
        "--reason",
        "validation",
        "--reason",
        "Range",
        "--key",
        "k1",
        "--from",
        "0:5",
        "--to",
        "2026-12-03T10:00:00Z",
      ],
      ["replay - 0:5 2026-12-03T10:00:00Z validation+Range k1 dry - -"],
    ],
    [
      ["replay", "--topic", "old.dlq", "--group", "g2", "--max-replays", "5"],
      ["replay old.dlq - - - - live g2 5"],
    ],
    [["--help"], []],
    [["validate", "-h"], []],
  ]
  for (const [argv, ran] of cases) {
    it.effect(`[${argv.join(" ")}] runs ${ran.join(", ") || "nothing"}`, () =>
      Effect.gen(function* () {
        const r = yield* parsed(argv)
        assert.isTrue(Exit.isSuccess(r.exit))
        assert.deepStrictEqual(r.ran, ran)
        assert.strictEqual(r.err, "")
      }),
    )
  }

  it.effect("--help prints the commands on stdout; a subcommand's help is its own", () =>
    Effect.gen(function* () {
      const root = yield* parsed(["--help"])
      assert.include(root.out, "USAGE")
      for (const command of ["run", "validate", "plan", "replay"]) assert.include(root.out, command)
      const plan = yield* parsed(["plan", "--help"])
      assert.include(plan.out, "node dist/main.js plan [flags] [<file>]")
      const replay = yield* parsed(["replay", "--help"])
      for (const flag of [
        "--topic",
        "--group",
        "--from",
        "--to",
        "--reason",
        "--key",
        "--dry-run",
        "--max-replays",
      ])
        assert.include(replay.out, flag)
    }),
  )

  const bad: ReadonlyArray<[ReadonlyArray<string>, ReadonlyArray<string>]> = [
    [["frobnicate"], ['Unknown subcommand "frobnicate"']],
    [["run", "now"], ['Unexpected positional argument: "now"']],
    [["validate", "x.yaml"], ['Unexpected positional argument: "x.yaml"']],
    [["plan", "a.yaml", "b.yaml"], ['Unexpected positional argument: "b.yaml"']],
    [["--verbose"], ["Unrecognized flag: --verbose"]],
    [["replay", "now"], ['Unexpected positional argument: "now"']],
    // Every problem of the command line at once.
    [
      ["validate", "--fast", "--quiet"],
      ["Unrecognized flag: --fast", "Unrecognized flag: --quiet"],
    ],
  ]
  for (const [argv, texts] of bad) {
    it.effect(`[${argv.join(" ")}] is a usage error: exit code 2, the problems and the help on stderr`, () =>
      Effect.gen(function* () {
        const r = yield* parsed(argv)
        assert.deepStrictEqual(r.ran, [])
        assert.isTrue(Exit.isFailure(r.exit))
        if (Exit.isFailure(r.exit)) {
          const error = Cause.squash(r.exit.cause)
          assert.strictEqual(Runtime.getErrorExitCode(error), 2)
        }
        for (const text of texts) assert.include(r.err, text)
        assert.include(r.err, "USAGE")
        assert.strictEqual(r.out, "")
      }),
    )
  }
})

describe("the commands, run as a process", { timeout: 60_000 }, () => {
  it("--help prints the usage and exits 0", async () => {
    const r = await cli(["--help"])
    assert.strictEqual(r.code, 0, r.stderr)
    assert.include(r.stdout, "USAGE")
    for (const command of ["run", "validate", "plan", "replay"]) assert.include(r.stdout, command)
    assert.strictEqual(r.stderr, "")
  })

  it("an unknown command or flag exits 2 with every problem and the usage on stderr", async () => {
    const r = await cli(["frobnicate", "--fast"])
    assert.strictEqual(r.code, 2)
    assert.include(r.stderr, 'Unknown subcommand "frobnicate"')
    assert.include(r.stderr, "Unrecognized flag: --fast")
    assert.include(r.stderr, "USAGE")
    assert.strictEqual(r.stdout, "")
  })

  it("replay: every problem of its flags at once, exit 2, before anything connects", async () => {
    const r = await cli(
      ["replay", "--from", "yesterday", "--to", "0:5,0:6", "--max-replays", "0", "--group", "pipeline"],
      { ...goodEnv, KAFKA__BOOTSTRAP_SERVERS: `127.0.0.1:${await closedPort()}` },
    )
    assert.strictEqual(r.code, 2, r.stdout + r.stderr)
    for (const text of [
      '--from: expected a time (2026-12-03T10:00:00Z), an offset for every partition (120) or offsets per partition (0:120,2:95), got "yesterday"',
      '--to: partition 0 is named twice in "0:5,0:6"',
      '--max-replays: expected a whole number from 1 to 1000, got "0"',
      '--group: "pipeline" is the service\'s own group (KAFKA__CONSUMER_GROUP); a replay needs a group of its own',
    ])
      assert.include(r.stderr, text)
    assert.notInclude(r.stdout + r.stderr, "cannot connect")
    noSecrets(r.stdout + r.stderr)
  })

  it("validate: good settings and the shipped pipeline exit 0", async () => {
    const r = await cli(["validate"], goodEnv)
    assert.strictEqual(r.code, 0, r.stderr)
    assert.include(r.stdout, 'configuration and pipeline "orders" are valid')
    noSecrets(r.stdout + r.stderr)
  })

  it("validate: every settings problem at once, exit 2, no secret in the message", async () => {
    const r = await cli(["validate"], {
      ...goodEnv,
      KAFKA__BOOTSTRAP_SERVERS: "",
      KAFKA__API_KEY: "",
      MONGODB__CONNECTION_STRING: `http://app:${PASSWORD}@db/`,
      PIPELINE__BATCH_SIZE: "0",
      LOGGING__LEVEL: "LOUD",
    })
    assert.strictEqual(r.code, 2)
    assert.strictEqual(r.stdout, "")
    for (const text of [
      "invalid configuration (5 problems)",
      "KAFKA__BOOTSTRAP_SERVERS: required but not set",
      "KAFKA__API_KEY and KAFKA__API_SECRET",
      "MONGODB__CONNECTION_STRING: expected a mongodb:// or mongodb+srv:// URI",
      "PIPELINE__BATCH_SIZE",
      'LOGGING__LEVEL: expected one of DEBUG, INFO, WARNING, ERROR, got "LOUD"',
    ]) {
      assert.include(r.stderr, text)
    }
    noSecrets(r.stderr)
  })

  it("validate: a setting that does not exist exits 2, naming it and the nearest known name", async () => {
    const r = await cli(["validate"], {
      ...goodEnv,
      MONGODB__COLECTION: "orders",
      MONGODB__WRITE_CONCERN: "bogus",
    })
    assert.strictEqual(r.code, 2)
    assert.include(r.stderr, "invalid configuration (2 problems)")
    assert.include(r.stderr, "MONGODB__COLECTION: no such setting; did you mean MONGODB__COLLECTION?")
    assert.include(r.stderr, "MONGODB__WRITE_CONCERN: no such setting (the MONGODB__ settings: ")
  })

  it("validate: a broken pipeline file exits 2 with its problems, together with the settings' problems", async () => {
    const file = "test/fixtures/pipelines/broken/cycle.yaml"
    const r = await cli(["validate"], { ...goodEnv, PIPELINE__FILE: file, KAFKA__TOPIC_SOURCE: "" })
    assert.strictEqual(r.code, 2)
    assert.include(r.stderr, "KAFKA__TOPIC_SOURCE: required but not set")
    assert.include(r.stderr, readFileSync(file.replace(".yaml", ".expected.txt"), "utf8").trim())
  })

  it("plan: prints the tiers and a Mermaid graph, without needing any settings", async () => {
    const r = await cli(["plan"])
    assert.strictEqual(r.code, 0, r.stderr)
    assert.include(r.stdout, 'Pipeline "orders": 7 tasks, key event_id')
    assert.include(r.stdout, "1. mapping (field_mapping)")
    assert.include(r.stdout, "6. mongodb (mongodb_sink), kafka (kafka_sink)")
    assert.include(r.stdout, "```mermaid")
  })

  it("plan: a broken file, a missing file and an unknown file type exit 2", async () => {
    const broken = await cli(["plan", "test/fixtures/pipelines/broken/unknown-type.yaml"])
    assert.strictEqual(broken.code, 2)
    assert.include(broken.stderr, "invalid pipeline definition")
    assert.strictEqual(broken.stdout, "")
    const missing = await cli(["plan", "config/nothing-here.yaml"])
    assert.strictEqual(missing.code, 2)
    assert.include(missing.stderr, "cannot read pipeline definition config/nothing-here.yaml")
    const unknown = await cli(["plan", "package.json.txt"])
    assert.strictEqual(unknown.code, 2)
    assert.include(unknown.stderr, "unknown file type")
  })

  it("plan: reads PIPELINE__FILE when no file is given", async () => {
    const r = await cli(["plan"], { PIPELINE__FILE: "test/fixtures/pipelines/broken/cycle.yaml" })
    assert.strictEqual(r.code, 2)
    assert.include(r.stderr, "cycle")
  })

  it("run: a runtime failure (MongoDB unreachable) exits 1 with one JSON error line, scrubbed", async () => {
    const port = await closedPort()
    const r = await cli(["run"], {
      ...goodEnv,
      KAFKA__BOOTSTRAP_SERVERS: `127.0.0.1:${port}`,
      MONGODB__CONNECTION_STRING: `mongodb://app:${PASSWORD}@127.0.0.1:${port}/?serverSelectionTimeoutMS=300`,
      METRICS__PORT: "0",
    })
    assert.strictEqual(r.code, 1, r.stderr)
    const lines = r.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { message: string; level: string; cause?: string })
    const last = lines[lines.length - 1]!
    assert.strictEqual(last.level, "ERROR")
    assert.strictEqual(last.message, "the service stopped after a failure")
    assert.include(last.cause, "MongoDB")
    assert.strictEqual(r.stderr, "")
    noSecrets(r.stdout)
  }, 60_000)

  it("run: a second SIGTERM while the first is being handled forces exit 130", async () => {
    const port = await closedPort()
    // MongoDB never answers within the test: the start hangs in the driver, where the first
    // signal has to wait for it.
    const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts", "run"], {
      cwd: root,
      env: {
        ...baseEnv,
        ...goodEnv,
        MONGODB__CONNECTION_STRING: `mongodb://127.0.0.1:${port}/?serverSelectionTimeoutMS=60000`,
        METRICS__PORT: "0",
      },
      stdio: ["ignore", "pipe", "pipe"],
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString()
    })
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString()
    })
    const exited = new Promise<number | null>((done) => child.once("exit", (code) => done(code)))
    const deadline = Date.now() + 30_000
    while (!stdout.includes('"starting"') && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50))
    assert.include(stdout, '"starting"')
    child.kill("SIGTERM")
    // The same signal twice within a second counts once (a terminal delivers Ctrl-C to the whole group).
    await new Promise((r) => setTimeout(r, 1_200))
    assert.isNull(child.exitCode, "the first signal waits for the start to give up")
    child.kill("SIGTERM")
    assert.strictEqual(await exited, 130)
    assert.include(stderr, "second SIGTERM: exiting now")
  }, 60_000)
})
