import { readdirSync, readFileSync } from "node:fs"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { loadPipelineFile, PipelineFileError } from "../../src/Config/PipelineFile.js"
import { describePlan } from "../../src/Config/PipelinePlan.js"
import { PipelineSpecError } from "../../src/Config/PipelineSpec.js"

// Paths are relative to the repository root, where vitest runs; they appear in the messages.
const brokenDir = "test/fixtures/pipelines/broken"
const broken = readdirSync(brokenDir).filter((file) => /\.(ya?ml|json)$/.test(file))
const valid = [
  "config/pipeline.yaml",
  ...readdirSync("config/examples").map((file) => `config/examples/${file}`),
]

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
      assert.strictEqual(`${error.message}\n`, expected)
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
})
