/**
 * The operations endpoints in-process (HttpRouter as a web handler, no port): /healthz always
 * answers while the process runs, /readyz follows the readiness the pipeline provides (200,
 * or 503 with its reasons as JSON), /metrics is the Prometheus text of the service's metrics,
 * and an unknown path is a 404.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Metric } from "effect"
import { HttpRouter } from "effect/http"
import { decodeSettings } from "../../src/Config/AppConfig.js"
import { routes } from "../../src/Observability/HttpServer.js"
import * as Metrics from "../../src/Observability/Metrics.js"
import { Readiness } from "../../src/Observability/Readiness.js"
import { make, Status } from "../../src/Observability/Status.js"
import * as InMemory from "../support/InMemory.js"

const get = (path: string, reasons: ReadonlyArray<string> = []) =>
  Effect.gen(function* () {
    const status = yield* make(yield* decodeSettings(InMemory.testEnv))
    const app = Layer.mergeAll(
      routes,
      Layer.succeed(Status, status),
      Layer.succeed(Readiness, { reasons: Effect.succeed(reasons) }),
    )
    return yield* Effect.acquireUseRelease(
      Effect.sync(() => HttpRouter.toWebHandler(app, { disableLogger: true })),
      ({ handler }) =>
        Effect.promise(async () => {
          const response = await handler(new Request(`http://localhost${path}`))
          return { status: response.status, body: await response.text() }
        }),
      ({ dispose }) => Effect.promise(dispose),
    )
  })

describe("the operations endpoints", () => {
  it.effect("/healthz answers ok", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(yield* get("/healthz"), { status: 200, body: "ok" })
    }),
  )

  it.effect("/readyz is 200 when nothing is wrong, 503 with every reason otherwise", () =>
    Effect.gen(function* () {
      const ready = yield* get("/readyz")
      assert.strictEqual(ready.status, 200)
      assert.deepStrictEqual(JSON.parse(ready.body), { ready: true })
      const reasons = [
        "the Kafka consumer has not joined its group",
        "partition 2 stalled for 61 s at offsets 0-99",
      ]
      const notReady = yield* get("/readyz", reasons)
      assert.strictEqual(notReady.status, 503)
      assert.deepStrictEqual(JSON.parse(notReady.body), { ready: false, reasons })
    }),
  )

  it.effect("/metrics is the Prometheus text of the service's metrics", () =>
    Effect.gen(function* () {
      yield* Metric.update(Metrics.recordsFiltered, 3)
      const metrics = yield* get("/metrics")
      assert.strictEqual(metrics.status, 200)
      assert.include(metrics.body, "# TYPE pipeline_records_filtered_total counter")
      assert.match(metrics.body, /^pipeline_records_filtered_total \d+/m)
    }),
  )

  it.effect("an unknown path is a 404", () =>
    Effect.gen(function* () {
      assert.strictEqual((yield* get("/nothing-here")).status, 404)
    }),
  )
})
