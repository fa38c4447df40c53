/**
 * The status page as the HTTP layer serves it: `/`, its script and style from the files that
 * ship with the package, `/status.json` from the Status service, and nothing in the page that
 * loads from anywhere but the service itself. And the service fed by runPipeline over the
 * in-memory layers: its counts are what was pushed, and a stall shows while it lasts.
 */
import { readFileSync } from "node:fs"
import { assert, describe, it, layer } from "@effect/vitest"
import { Effect, Fiber, Layer } from "effect"
import { HttpRouter } from "effect/http"
import { TestClock } from "effect/testing"
import { decodeSettings } from "../../src/Config/AppConfig.js"
import { loadPipelineFile } from "../../src/Config/PipelineFile.js"
import { defaultRecordOptions, encode, type GeneratedRecord, generate } from "../../src/Generator/Records.js"
import { routes } from "../../src/Observability/HttpServer.js"
import { Readiness } from "../../src/Observability/Readiness.js"
import { loadPage, pageDir } from "../../src/Observability/Status/Page.js"
import { make, Status, type StatusSnapshot } from "../../src/Observability/Status/Status.js"
import { runPipeline } from "../../src/Pipeline/Service.js"
import * as InMemory from "../support/InMemory.js"

const get = (path: string) =>
  Effect.gen(function* () {
    const settings = yield* decodeSettings(InMemory.testEnv)
    const status = yield* make(settings)
    const app = Layer.mergeAll(
      routes,
      Layer.succeed(Status, status),
      Layer.succeed(Readiness, { reasons: Effect.succeed([]) }),
    )
    return yield* Effect.acquireUseRelease(
      Effect.sync(() => HttpRouter.toWebHandler(app, { disableLogger: true })),
      ({ handler }) =>
        Effect.promise(async () => {
          const response = await handler(new Request(`http://localhost${path}`))
          return { status: response.status, headers: response.headers, body: await response.text() }
        }),
      ({ dispose }) => Effect.promise(dispose),
    )
  })

describe("the status page's routes", () => {
  it.effect(
    "serve the page, its script and its style, telling the browser to load nothing from elsewhere",
    () =>
      Effect.gen(function* () {
        const page = yield* get("/")
        assert.strictEqual(page.status, 200)
        assert.match(page.headers.get("content-type") ?? "", /^text\/html/)
        assert.include(page.headers.get("content-security-policy") ?? "", "default-src 'self'")
        assert.include(page.body, '<script src="status.js"')
        const script = yield* get("/status.js")
        assert.strictEqual(script.status, 200)
        assert.match(script.headers.get("content-type") ?? "", /^text\/javascript/)
        assert.strictEqual(script.body, readFileSync(`${pageDir}/status.js`, "utf8"))
        const style = yield* get("/status.css")
        assert.match(style.headers.get("content-type") ?? "", /^text\/css/)
      }),
  )

  it.effect("answer /status.json with the snapshot, never cached", () =>
    Effect.gen(function* () {
      const response = yield* get("/status.json")
      assert.strictEqual(response.status, 200)
      assert.strictEqual(response.headers.get("cache-control"), "no-store")
      const snapshot = JSON.parse(response.body) as StatusSnapshot
      assert.strictEqual(snapshot.state, "starting")
      assert.strictEqual(snapshot.consumer.sourceTopic, "orders")
      const settings = snapshot.settings as { mongodb: { uri: string } }
      assert.match(settings.mongodb.uri, /^<redacted/)
      assert.notInclude(response.body, "mongodb://memory")
    }),
  )

  it.effect("say that the page is missing when its files are", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(loadPage("/nonexistent/page"))
      assert.strictEqual(error._tag, "StatusPageMissing")
      assert.include(error.message, "/nonexistent/page")
    }),
  )

  it("refers to nothing but the service's own files", () => {
    const html = readFileSync(`${pageDir}/index.html`, "utf8")
    const references = [...html.matchAll(/\b(?:src|href)="([^"]*)"/g)].map((m) => m[1])
    assert.deepStrictEqual(references.sort(), ["#dag", "data:,", "status.css", "status.js", "status.json"])
    const script = readFileSync(`${pageDir}/status.js`, "utf8")
    // The SVG namespace is a name, not an address the browser loads.
    assert.deepStrictEqual(
      [...script.matchAll(/https?:\/\/[^\s"'`]+/g)].map((m) => m[0]),
      ["http://www.w3.org/2000/svg"],
    )
    assert.notMatch(readFileSync(`${pageDir}/status.css`, "utf8"), /url\(|@import/)
  })
})

const records: ReadonlyArray<GeneratedRecord> = [
  ...generate({ ...defaultRecordOptions, seed: 7, malformedRatio: 0.03 }, 0, 300),
]
const ofKind = (kind: GeneratedRecord["kind"]) => records.filter((r) => r.kind === kind).length

layer(InMemory.layer())("the status fed by runPipeline", (it) => {
  it.effect("counts what was pushed, and shows a stall while MongoDB is away", () =>
    Effect.gen(function* () {
      const stack = yield* InMemory.MemoryStack
      const status = yield* Status
      const spec = yield* loadPipelineFile("config/pipeline.yaml")
      const fiber = yield* Effect.forkScoped(runPipeline(spec).pipe(Effect.scoped))
      yield* stack.append(
        0,
        records.map((r) => encode(r)),
      )
      yield* stack.untilCommitted

      const after = yield* status.snapshot
      assert.strictEqual(after.state, "running")
      assert.deepInclude(after.totals.total, {
        consumed: records.length,
        valid: ofKind("valid"),
        duplicates: ofKind("duplicate"),
        filtered: 0,
        deadLettered: ofKind("invalid") + ofKind("malformed"),
      })
      assert.deepStrictEqual(after.totals.total.written, { mongodb: ofKind("valid"), kafka: ofKind("valid") })
      assert.deepStrictEqual(
        after.dag.nodes.map((n) => [n.name, n.dependsOn]),
        spec.tasks.map((t) => [t.name, t.dependsOn]),
      )
      const node = (name: string) => after.dag.nodes.find((n) => n.name === name)!
      assert.strictEqual(node("mapping").total.in, records.length - ofKind("malformed"))
      assert.strictEqual(node("dedupe").total.duplicates, ofKind("duplicate"))
      assert.strictEqual(node("mongodb").total.valid, ofKind("valid"))
      const parse = after.deadLetters.reasons.find((r) => r.stage === "parse")
      assert.strictEqual(parse?.total, ofKind("malformed"))
      assert.strictEqual(after.partitions[0]?.committedOffset, String(records.length))

      stack.mongoDown(true)
      // Records that come after the others in the stream: valid ones need MongoDB.
      const later = [...generate({ ...defaultRecordOptions, seed: 7, duplicateRatio: 0 }, 300, 10)]
      assert.isTrue(later.some((r) => r.kind === "valid"))
      yield* stack.append(
        0,
        later.map((r) => encode(r)),
      )
      for (let i = 0; i < 20; i++) yield* TestClock.adjust("10 seconds")
      const stalled = yield* status.snapshot
      assert.strictEqual(stalled.state, "stalled")
      assert.strictEqual(stalled.partitions[0]?.stalled, true)
      assert.strictEqual(stalled.partitions[0]?.stall?.what, "the mongodb sink")
      assert.strictEqual(stalled.totals.total.consumed, records.length, "nothing counted while stalled")

      stack.mongoDown(false)
      yield* TestClock.adjust("2 minutes")
      yield* stack.untilCommitted
      const recovered = yield* status.snapshot
      assert.strictEqual(recovered.state, "running")
      assert.strictEqual(recovered.totals.total.consumed, records.length + 10)
      yield* Fiber.interrupt(fiber)
      assert.strictEqual((yield* status.snapshot).state, "stopping")
    }),
  )
})

layer(InMemory.layer({ PIPELINE__FILE: "config/examples/branched.yaml" }))(
  "the status of a branched pipeline",
  (it) => {
    it.effect("draws its branches and merges as declared and counts each branch on its own", () =>
      Effect.gen(function* () {
        const stack = yield* InMemory.MemoryStack
        const status = yield* Status
        const spec = yield* loadPipelineFile("config/examples/branched.yaml")
        const fiber = yield* Effect.forkScoped(runPipeline(spec).pipe(Effect.scoped))
        yield* stack.append(
          0,
          records.map((r) => encode(r)),
        )
        yield* stack.untilCommitted

        const snapshot = yield* status.snapshot
        assert.deepStrictEqual(
          snapshot.dag.nodes.map((n) => [n.name, n.kind, n.dependsOn]),
          spec.tasks.map((t) => [t.name, t.type.endsWith("_sink") ? "sink" : "transform", t.dependsOn]),
        )
        const node = (name: string) => snapshot.dag.nodes.find((n) => n.name === name)!
        // The merge: dedupe reads both branches, each record once.
        assert.strictEqual(node("dedupe").total.in, node("conversion").total.in)
        assert.strictEqual(node("conversion").total.in, node("standardization").total.in)
        // The route: what the filter lets through is what the sink topic gets; MongoDB gets every valid record.
        const paid = node("paid").total
        assert.isAbove(paid.filtered, 0)
        assert.strictEqual(paid.valid + paid.filtered, node("quality").total.valid)
        assert.strictEqual(node("kafka").total.valid, paid.valid)
        assert.strictEqual(node("mongodb").total.valid, ofKind("valid"))
        assert.deepStrictEqual(snapshot.totals.total.written, { mongodb: ofKind("valid"), kafka: paid.valid })
        yield* Fiber.interrupt(fiber)
      }),
    )
  },
)
