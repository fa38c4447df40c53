import { readdirSync, readFileSync } from "node:fs"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Result } from "effect"
import { loadPipelineFile, PipelineFileError, parsePipelineText } from "../../src/Config/PipelineFile.js"
import { PipelineSpecError } from "../../src/Config/PipelineSpec.js"
import { describePlan } from "../../src/Config/PlanText.js"

// Paths are relative to the repository root, where vitest runs; they appear in the messages.
const brokenDir = "test/fixtures/pipelines/broken"
const broken = readdirSync(brokenDir).filter((file) => /\.(ya?ml|json)$/.test(file))
const valid = [
  "config/pipeline.yaml",
  ...readdirSync("config/examples").map((file) => `config/examples/${file}`),
]

/**
 * The expected text, where `{engine}` stands for a reason worded by the JavaScript engine
 * (a regular expression's syntax error), which another engine version may word differently.
 */
const expectedPattern = (text: string): RegExp =>
  new RegExp(
    `^${text
      .split("{engine}")
      .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))
      .join("[^\\n)]+")}$`,
  )

describe("pipeline files", () => {
  it.effect.each(valid)("%s is valid", (path) =>
    Effect.gen(function* () {
      const spec = yield* loadPipelineFile(path)
      assert.isAbove(spec.tasks.length, 0)
      assert.include(describePlan(spec), "graph TD")
    }),
  )

  it.effect.each(broken)("%s fails with the expected problems", (file) =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(loadPipelineFile(`${brokenDir}/${file}`))
      assert.instanceOf(error, PipelineSpecError)
      const expected = readFileSync(
        `${brokenDir}/${file.replace(/\.(ya?ml|json)$/, "")}.expected.txt`,
        "utf8",
      )
      assert.match(`${error.message}\n`, expectedPattern(expected))
    }),
  )

  it.effect("names a missing file and an unknown extension", () =>
    Effect.gen(function* () {
      const missing = yield* Effect.flip(loadPipelineFile("config/nothing-here.yaml"))
      assert.instanceOf(missing, PipelineFileError)
      assert.include(missing.message, "config/nothing-here.yaml")
      const unknown = yield* Effect.flip(loadPipelineFile("config/pipeline.toml"))
      assert.instanceOf(unknown, PipelineFileError)
      assert.include(unknown.message, "use .yaml, .yml or .json")
    }),
  )

  it.effect("reads the same pipeline from YAML and JSON", () =>
    Effect.gen(function* () {
      const yaml = yield* loadPipelineFile("config/pipeline.yaml")
      const json = yield* loadPipelineFile("config/examples/seed.json")
      assert.deepStrictEqual(json, yaml)
    }),
  )

  // Inline rather than as fixture files, which the repository's linters would refuse to parse.
  it("locates YAML syntax errors by line and column", () => {
    const result = parsePipelineText(
      "key: id\ntasks:\n  - name: a\n    type: b\n     settings: {}\n",
      "yaml",
      "x.yaml",
    )
    assert.isTrue(Result.isFailure(result))
    if (Result.isFailure(result)) {
      assert.strictEqual(
        result.failure.message,
        [
          "invalid pipeline definition x.yaml (2 problems):",
          "  - line 4, column 11: invalid YAML: Nested mappings are not allowed in compact mappings",
          "  - line 4, column 11: invalid YAML: Implicit keys need to be on a single line",
        ].join("\n"),
      )
    }
    const duplicate = parsePipelineText("key: a\nkey: b\n", "yaml")
    assert.isTrue(Result.isFailure(duplicate) && duplicate.failure.problems[0]!.message.includes("unique"))
  })

  it("reports a JSON syntax error", () => {
    const result = parsePipelineText('{ "key": "id", "tasks": [ }', "json", "x.json")
    assert.isTrue(Result.isFailure(result))
    if (Result.isFailure(result)) {
      assert.strictEqual(result.failure.problems.length, 1)
      assert.match(result.failure.problems[0]!.message, /^invalid JSON: [^\n]+$/)
    }
  })
})
