/**
 * The operations endpoints on METRICS__PORT: /metrics (Prometheus text), /healthz (the
 * process and its main fiber are alive) and /readyz (200 only while the consumer is in its
 * group and MongoDB answers a ping; 503 with a JSON reason otherwise).
 */
import { createServer } from "node:http"
import { NodeHttpServer } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { HttpRouter, HttpServerResponse } from "effect/http"
import { PrometheusMetrics } from "effect/observability"
import { KafkaSource } from "../Kafka/KafkaSource.js"
import { MongoDb } from "../Mongo/MongoDb.js"

export const readiness = Effect.gen(function* () {
  const source = yield* KafkaSource
  const mongo = yield* MongoDb
  const reasons: string[] = []
  if (!(yield* source.joined)) reasons.push("the Kafka consumer has not joined its group")
  const ping = yield* Effect.result(mongo.ping.pipe(Effect.timeout("2 seconds")))
  if (ping._tag === "Failure") reasons.push(`MongoDB does not answer: ${ping.failure.message}`)
  return reasons
})

const routes = Layer.mergeAll(
  HttpRouter.add("GET", "/healthz", HttpServerResponse.text("ok")),
  HttpRouter.add(
    "GET",
    "/readyz",
    readiness.pipe(
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
