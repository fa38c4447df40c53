/**
 * The operations endpoints on METRICS__PORT: /metrics (Prometheus text), /healthz (the
 * process and its main fiber are alive) and /readyz (200 while the pipeline's readiness check
 * finds nothing wrong; 503 with the reasons as JSON otherwise).
 */
import { createServer } from "node:http"
import { NodeHttpServer } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { HttpRouter, HttpServerResponse } from "effect/http"
import { PrometheusMetrics } from "effect/observability"
import { Readiness } from "./Readiness.js"

const routes = Layer.mergeAll(
  HttpRouter.add("GET", "/healthz", HttpServerResponse.text("ok")),
  HttpRouter.add(
    "GET",
    "/readyz",
    Effect.gen(function* () {
      return yield* (yield* Readiness).reasons
    }).pipe(
      Effect.map((reasons) =>
        reasons.length === 0
          ? HttpServerResponse.jsonUnsafe({ ready: true })
          : HttpServerResponse.jsonUnsafe({ ready: false, reasons }, { status: 503 }),
      ),
    ),
  ),
  PrometheusMetrics.layerHttp({ path: "/metrics" }),
)

export const layer = (port: number) =>
  port === 0
    ? Layer.empty
    : HttpRouter.serve(routes, { disableLogger: true }).pipe(
        Layer.provide(NodeHttpServer.layer(createServer, { port })),
      )
