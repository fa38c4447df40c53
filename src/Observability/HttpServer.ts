/**
 * The operations endpoints on METRICS__PORT: /metrics (Prometheus text), /healthz (the
 * process and its main fiber are alive), /readyz (200 while the pipeline's readiness check
 * finds nothing wrong; 503 with the reasons as JSON otherwise), and the live status page: `/`
 * with its script and style, and its data at /status.json.
 */
import { createServer } from "node:http"
import { NodeHttpServer } from "@effect/platform-node"
import { Data, Effect, Layer } from "effect"
import { HttpRouter, HttpServerResponse, HttpServer as Server } from "effect/http"
import { PrometheusMetrics } from "effect/observability"
import { Readiness } from "./Readiness.js"
import { loadPage, pageHeaders } from "./Status/Page.js"
import { Status } from "./Status.js"

/** The page's files; when they are missing (a build that left them out), `/` says so with a 503. */
const pageRoutes = HttpRouter.addAll(
  loadPage().pipe(
    Effect.map((files) =>
      files.map((file) =>
        HttpRouter.route(
          "GET",
          file.route,
          HttpServerResponse.uint8Array(file.body, { contentType: file.contentType, headers: pageHeaders }),
        ),
      ),
    ),
    Effect.catchTag("StatusPageMissing", (e) =>
      Effect.logWarning("the status page is off").pipe(
        Effect.annotateLogs({ error: e.message }),
        Effect.as([HttpRouter.route("GET", "/", HttpServerResponse.text(`${e.message}\n`, { status: 503 }))]),
      ),
    ),
  ),
)

export const routes = Layer.mergeAll(
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
  HttpRouter.add(
    "GET",
    "/status.json",
    Status.use((status) => status.snapshot).pipe(
      Effect.map((snapshot) =>
        HttpServerResponse.jsonUnsafe(snapshot, { headers: { "cache-control": "no-store" } }),
      ),
    ),
  ),
  pageRoutes,
  PrometheusMetrics.layerHttp({ path: "/metrics" }),
)

/** The port cannot be had: one line that names it and the setting, instead of a stack. */
export class MetricsPortUnavailable extends Data.TaggedError("MetricsPortUnavailable")<{
  readonly port: number
  readonly cause: unknown
}> {
  override get message() {
    const code = (this.cause as { code?: unknown } | undefined)?.code
    const why =
      code === "EADDRINUSE"
        ? "it is in use already: stop what holds it, or choose another port (0 turns the HTTP server off)"
        : code === "EACCES"
          ? "permission denied (a port below 1024 needs privileges): choose a port from 1024 up"
          : String((this.cause as { message?: unknown } | undefined)?.message ?? this.cause)
    return `METRICS__PORT: cannot listen on port ${this.port}: ${why}`
  }
}

export const layer = (port: number) =>
  port === 0
    ? Layer.empty
    : HttpRouter.serve(routes, { disableLogger: true }).pipe(
        Layer.provide(
          NodeHttpServer.layer(createServer, { port }).pipe(
            Layer.catchTag("ServeError", (e) =>
              Layer.effect(
                Server.HttpServer,
                Effect.fail(new MetricsPortUnavailable({ port, cause: e.cause })),
              ),
            ),
          ),
        ),
      )
