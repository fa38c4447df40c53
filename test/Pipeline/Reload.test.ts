import { mkdtempSync, readFileSync, renameSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Metric } from "effect"
import { TestConsole } from "effect/testing"
import { loadPipelineFile } from "../../src/Config/PipelineFile.js"
import type { PipelineSpec } from "../../src/Config/PipelineSpec.js"
import * as Metrics from "../../src/Observability/Metrics.js"
import { makeReloader, watchAndReload } from "../../src/Pipeline/Reload.js"
import { captureLogs, parseJsonLines } from "../Observability/support.js"

const shipped = readFileSync("config/pipeline.yaml", "utf8")

/** A copy of the shipped pipeline in a directory of its own. */
const pipelineFile = () => {
  const file = join(mkdtempSync(join(tmpdir(), "reload-")), "pipeline.yaml")
  writeFileSync(file, shipped)
  return file
}

/** Writes the file the way editors do: a new file renamed over the old one. */
const replace = (file: string, text: string) => {
  writeFileSync(`${file}.tmp`, text)
  renameSync(`${file}.tmp`, file)
}

const changed = shipped.replace("maxInvalidRatio: 0.5", "maxInvalidRatio: 0.25")

/** The plan stands for what the service builds: here, the task names and a build counter. */
const reloaderFor = (file: string) =>
  Effect.gen(function* () {
    let builds = 0
    const build = (spec: PipelineSpec) =>
      Effect.sync(() => ({ tasks: spec.tasks.map((t) => t.name), build: ++builds }))
    const spec = yield* loadPipelineFile(file)
    return yield* makeReloader({
      file,
      initial: { spec, value: yield* build(spec) },
      load: loadPipelineFile,
      build,
      describe: (plan) => plan.tasks.join(" -> "),
    })
  })

const threshold = (spec: PipelineSpec) => JSON.stringify(spec.tasks.find((t) => t.name === "quality"))

const reloads = (outcome: string) =>
  Metric.value(Metric.withAttributes(Metrics.reloads, { outcome })).pipe(Effect.map((s) => s.count))

const waitUntil = (what: string, check: Effect.Effect<boolean>) =>
  Effect.gen(function* () {
    const deadline = Date.now() + 10_000
    while (!(yield* check)) {
      if (Date.now() > deadline) return yield* Effect.die(new Error(`timed out waiting for ${what}`))
      yield* Effect.sleep("20 millis")
    }
  })

describe("pipeline hot reload", () => {
  it.effect("a changed file is loaded, checked and swapped in for the next batch", () =>
    Effect.gen(function* () {
      const file = pipelineFile()
      const applied = yield* reloads("applied")
      const { result, lines } = yield* captureLogs(
        Effect.gen(function* () {
          const reloader = yield* reloaderFor(file)
          // A batch takes the plan that is current when it starts and keeps it to the end.
          const inFlight = yield* reloader.current
          replace(file, changed)
          yield* reloader.reload("file")
          return { inFlight, next: yield* reloader.current }
        }),
      )
      assert.strictEqual(result.inFlight.generation, 1)
      assert.strictEqual(result.inFlight.value.build, 1)
      assert.strictEqual(result.next.generation, 2)
      assert.strictEqual(result.next.value.build, 2)
      assert.include(threshold(result.next.spec), "0.25")
      assert.include(threshold(result.inFlight.spec), "0.5")
      assert.strictEqual(yield* reloads("applied"), applied + 1)
      const [line] = parseJsonLines(lines).filter((l) => l.level === "INFO")
      assert.include(String(line!.message), "pipeline reloaded")
      assert.include(String(line!.message), "the duplicate window starts empty")
      assert.include(String(line!.message), "environment settings are unchanged")
      assert.deepInclude(line!.annotations, { file, trigger: "file", generation: 2 })
    }),
  )

  it.effect("a bad file is rejected with its problems at ERROR, and the running plan stays", () =>
    Effect.gen(function* () {
      const file = pipelineFile()
      const { result, lines } = yield* captureLogs(
        Effect.gen(function* () {
          const reloader = yield* reloaderFor(file)
          replace(file, shipped.replace("dependsOn: [standardization]", "dependsOn: [nowhere]"))
          yield* reloader.reload("SIGHUP")
          replace(file, `${shipped}\n  - name: [unclosed\n`)
          yield* reloader.reload("file")
          return yield* reloader.current
        }),
      )
      assert.strictEqual(result.generation, 1)
      assert.include(threshold(result.spec), "0.5")
      const errors = parseJsonLines(lines).filter((l) => l.level === "ERROR")
      assert.strictEqual(errors.length, 2)
      for (const e of errors) {
        assert.include(String(e.message), "pipeline reload rejected")
        assert.include(String(e.message), "the running pipeline is unchanged")
      }
      assert.include(JSON.stringify(errors[0]!.annotations.problems), "nowhere")
      assert.include(JSON.stringify(errors[1]!.annotations.problems), "invalid YAML")
    }),
  )

  it.effect(
    "an unchanged definition (comments, layout) keeps the running plan and its duplicate window",
    () =>
      Effect.gen(function* () {
        const file = pipelineFile()
        const { result } = yield* captureLogs(
          Effect.gen(function* () {
            const reloader = yield* reloaderFor(file)
            replace(file, `# a comment\n\n${shipped}`)
            yield* reloader.reload("file")
            yield* reloader.reload("SIGHUP")
            return yield* reloader.current
          }),
        )
        assert.strictEqual(result.generation, 1)
        assert.strictEqual(result.value.build, 1)
      }),
  )

  it.effect("a plan whose build fails is rejected at ERROR", () =>
    Effect.gen(function* () {
      const file = pipelineFile()
      const { result, lines } = yield* captureLogs(
        Effect.gen(function* () {
          const spec = yield* loadPipelineFile(file)
          const reloader = yield* makeReloader({
            file,
            initial: { spec, value: "v1" },
            load: loadPipelineFile,
            build: () => Effect.fail({ message: "cannot build:\n  - task x: broken" }),
            describe: (v) => v,
          })
          replace(file, changed)
          yield* reloader.reload("file")
          return yield* reloader.current
        }),
      )
      assert.strictEqual(result.value, "v1")
      const [error] = parseJsonLines(lines).filter((l) => l.level === "ERROR")
      assert.deepStrictEqual(error!.annotations.problems, ["cannot build:", "- task x: broken"])
    }),
  )

  it.live("watches the file (replaced by rename, as editors do) and SIGHUP, until its scope closes", () =>
    Effect.gen(function* () {
      const file = pipelineFile()
      const hangupListeners = process.listenerCount("SIGHUP")
      const { lines } = yield* captureLogs(
        Effect.gen(function* () {
          const reloader = yield* reloaderFor(file)
          yield* watchAndReload(reloader, file, Duration.millis(50))
          assert.strictEqual(process.listenerCount("SIGHUP"), hangupListeners + 1)
          replace(file, changed)
          yield* waitUntil(
            "the file change",
            Effect.map(reloader.current, (a) => a.generation === 2),
          )
          replace(file, shipped)
          yield* waitUntil(
            "the second change",
            Effect.map(reloader.current, (a) => a.generation === 3),
          )
          writeFileSync(join(file, "..", "unrelated.txt"), "not the pipeline")
          process.emit("SIGHUP", "SIGHUP")
          yield* waitUntil(
            "the SIGHUP",
            Effect.map(TestConsole.logLines, (logged) =>
              logged.some((l) => String(l).includes("has not changed")),
            ),
          )
          assert.strictEqual((yield* reloader.current).generation, 3)
        }).pipe(Effect.scoped),
        { level: "INFO", format: "json" },
      )
      assert.strictEqual(process.listenerCount("SIGHUP"), hangupListeners)
      assert.strictEqual(parseJsonLines(lines).filter((l) => l.level === "ERROR").length, 0)
    }),
  )
})
