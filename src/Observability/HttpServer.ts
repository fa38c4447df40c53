/**
 * The operations endpoints on METRICS__PORT: /metrics (Prometheus text), /healthz (the
 * process and its main fiber are alive), /readyz (200 while the pipeline's readiness check
 * finds nothing wrong; 503 with the reasons as JSON otherwise), and the live status page: `/`
 * with its script and style, and its data at /status.json. With METRICS__STATUS_TOKEN set, the
 * page and its data need the token (StatusAccess.ts); the probes and /metrics never do. The
 * server listens on METRICS__HOST (`::`, every interface, by default).
 */
import { createServer } from "node:http"
import { NodeHttpServer } from "@effect/platform-node"
import { Data, Effect, Layer, type Redacted } from "effect"
import { HttpRouter, HttpServerResponse, HttpServer as Server } from "effect/http"
import { PrometheusMetrics } from "effect/observability"
import type { AppSettings } from "../Config/AppConfig.js"
import { Readiness } from "./Readiness.js"
import { loadPage, pageHeaders } from "./Status/Page.js"
import { Status } from "./Status/Status.js"
import { guarded } from "./StatusAccess.js"

type Token = Redacted.Redacted<string> | undefined

/** The page's files; when they are missing (a build that left them out), `/` says so with a 503. */
const pageRoutes = (token: Token) =>
  HttpRouter.addAll(
    loadPage().pipe(
      Effect.map((files) =>
        files.map((file) =>
          HttpRouter.route(
            "GET",
            file.route,
            guarded(
              token,
              Effect.succeed(
                HttpServerResponse.uint8Array(file.body, {
                  contentType: file.contentType,
                  headers: pageHeaders,
                }),
              ),
              { login: file.route === "/" },
            ),
          ),
        ),
      ),
      Effect.catchTag("StatusPageMissing", (e) =>
        Effect.logWarning("the status page is off").pipe(
          Effect.annotateLogs({ error: e.message }),
          Effect.as([
            HttpRouter.route("GET", "/", HttpServerResponse.text(`${e.message}\n`, { status: 503 })),
          ]),
        ),
      ),
    ),
  )

/** Every route; the status page's behind `token` when one is set. */
export const routesWith = (token: Token) =>
  Layer.mergeAll(
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
      guarded(
        token,
        Status.use((status) => status.snapshot).pipe(
          Effect.map((snapshot) =>
            HttpServerResponse.jsonUnsafe(snapshot, { headers: { "cache-control": "no-store" } }),
          ),
        ),
      ),
    ),
    pageRoutes(token),
    PrometheusMetrics.layerHttp({ path: "/metrics" }),
  )

/** The routes without a token. */
export const routes = routesWith(undefined)

/** The port cannot be had: one line that names it and the setting, instead of a stack. */
export class MetricsPortUnavailable extends Data.TaggedError("MetricsPortUnavailable")<{
  readonly port: number
  readonly host: string
  readonly cause: unknown
}> {
  override get message() {
    const code = (this.cause as { code?: unknown } | undefined)?.code
    const on = this.host === "::" ? "" : ` of ${this.host}`
    if (code === "EADDRNOTAVAIL" || code === "ENOTFOUND" || code === "EAI_AGAIN")
      return `METRICS__HOST: cannot listen on ${this.host}: it is not an address of this machine (:: or 0.0.0.0: every interface)`
    const why =
      code === "EADDRINUSE"
        ? "it is in use already: stop what holds it, or choose another port (0 turns the HTTP server off)"
        : code === "EACCES"
          ? "permission denied (a port below 1024 needs privileges): choose a port from 1024 up"
          : String((this.cause as { message?: unknown } | undefined)?.message ?? this.cause)
    return `METRICS__PORT: cannot listen on port ${this.port}${on}: ${why}`
  }
}

export const layer = (settings: Pick<AppSettings["metrics"], "port" | "host" | "statusToken">) => {
  const { port, host, statusToken } = settings
  // `::` is left to Node, which listens on :: and takes IPv4 too, or on 0.0.0.0 where the
  // machine has no IPv6.
  const listen = host === "::" ? { port } : { port, host }
  return port === 0
    ? Layer.empty
    : HttpRouter.serve(routesWith(statusToken), { disableLogger: true }).pipe(
        Layer.provide(
          NodeHttpServer.layer(createServer, listen).pipe(
            Layer.catchTag("ServeError", (e) =>
              Layer.effect(
                Server.HttpServer,
                Effect.fail(new MetricsPortUnavailable({ port, host, cause: e.cause })),
              ),
            ),
          ),
        ),
      )
}
