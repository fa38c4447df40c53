/**
 * The operations endpoints in-process (HttpRouter as a web handler, no port): /healthz always
 * answers while the process runs, /readyz follows the readiness the pipeline provides (200,
 * or 503 with its reasons as JSON), /metrics is the Prometheus text of the service's metrics,
 * and an unknown path is a 404. With METRICS__STATUS_TOKEN, the status page and its data need
 * the token (a bearer header, or the cookie a browser gets from `/?token=`) and the probes and
 * /metrics do not; /status.json never shows the SASL user name; the server listens on
 * METRICS__HOST.
 */
import { createServer } from "node:net"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Metric } from "effect"
import { HttpRouter } from "effect/http"
import { decodeSettings, type Env } from "../../src/Config/AppConfig.js"
import * as Http from "../../src/Observability/HttpServer.js"
import { routes, routesWith } from "../../src/Observability/HttpServer.js"
import * as Metrics from "../../src/Observability/Metrics.js"
import { Readiness } from "../../src/Observability/Readiness.js"
import { make, Status } from "../../src/Observability/Status/Status.js"
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

const TOKEN = "FAKE-status-token-0c7d1e2f"

/** One request to the routes of a service with `env` over the test settings (a token, credentials). */
const request = (path: string, env: Env = {}, headers: Record<string, string> = {}) =>
  Effect.gen(function* () {
    const settings = yield* decodeSettings({ ...InMemory.testEnv, ...env })
    const app = Layer.mergeAll(
      routesWith(settings.metrics.statusToken),
      Layer.succeed(Status, yield* make(settings)),
      Layer.succeed(Readiness, { reasons: Effect.succeed([]) }),
    )
    return yield* Effect.acquireUseRelease(
      Effect.sync(() => HttpRouter.toWebHandler(app, { disableLogger: true })),
      ({ handler }) =>
        Effect.promise(async () => {
          const response = await handler(
            new Request(`http://localhost${path}`, { headers, redirect: "manual" }),
          )
          return { status: response.status, headers: response.headers, body: await response.text() }
        }),
      ({ dispose }) => Effect.promise(dispose),
    )
  })

describe("METRICS__STATUS_TOKEN", () => {
  // These tests are about the token: each sets it.
  const withToken = { METRICS__STATUS_TOKEN: TOKEN }

  it.effect("without it, the page, its files and its data answer 401 and say how to give it", () =>
    Effect.gen(function* () {
      for (const path of ["/", "/status.json", "/status.js", "/status.css"]) {
        const r = yield* request(path, withToken)
        assert.strictEqual(r.status, 401, path)
        assert.include(r.body, "Authorization: Bearer <token>")
        assert.include(r.body, "/?token=<token>")
        assert.strictEqual(r.headers.get("www-authenticate"), 'Bearer realm="pipeline status"')
        assert.notInclude(r.body, TOKEN)
      }
      const wrong = yield* request("/status.json", withToken, { authorization: "Bearer not-the-token" })
      assert.strictEqual(wrong.status, 401)
    }),
  )

  it.effect("with `Authorization: Bearer <token>`, they answer", () =>
    Effect.gen(function* () {
      const bearer = { authorization: `Bearer ${TOKEN}` }
      const json = yield* request("/status.json", withToken, bearer)
      assert.strictEqual(json.status, 200)
      assert.strictEqual((JSON.parse(json.body) as { state: string }).state, "starting")
      assert.strictEqual((yield* request("/", withToken, bearer)).status, 200)
      assert.strictEqual((yield* request("/status.js", withToken, bearer)).status, 200)
    }),
  )

  it.effect("a browser opens /?token=<token> once: a private cookie, not the token, and back to /", () =>
    Effect.gen(function* () {
      const login = yield* request(`/?token=${encodeURIComponent(TOKEN)}`, withToken)
      assert.strictEqual(login.status, 303)
      assert.strictEqual(login.headers.get("location"), "/")
      const cookie = login.headers.get("set-cookie") ?? ""
      assert.match(cookie, /^pipeline_status=[^;]+/)
      assert.match(cookie, /HttpOnly/i)
      assert.match(cookie, /SameSite=Strict/i)
      assert.match(cookie, /Path=\//i)
      assert.notInclude(cookie, TOKEN)
      const session = cookie.split(";")[0]!
      const page = yield* request("/", withToken, { cookie: session })
      assert.strictEqual(page.status, 200)
      assert.include(page.body, '<script src="status.js"')
      assert.strictEqual((yield* request("/status.json", withToken, { cookie: session })).status, 200)
      // A cookie made up, or one from another token, opens nothing.
      const forged = yield* request("/status.json", withToken, { cookie: "pipeline_status=x" })
      assert.strictEqual(forged.status, 401)
      const other = yield* request(
        "/status.json",
        { METRICS__STATUS_TOKEN: `${TOKEN}-new` },
        { cookie: session },
      )
      assert.strictEqual(other.status, 401)
      const wrong = yield* request("/?token=guess", withToken)
      assert.strictEqual(wrong.status, 401)
      assert.isNull(wrong.headers.get("set-cookie"))
    }),
  )

  it.effect("/metrics, /healthz and /readyz stay open for probes and scrapers", () =>
    Effect.gen(function* () {
      for (const path of ["/metrics", "/healthz", "/readyz"])
        assert.strictEqual((yield* request(path, withToken)).status, 200, path)
    }),
  )

  it.effect("is a secret: refused when short, never echoed, redacted in the settings", () =>
    Effect.gen(function* () {
      const problems = yield* decodeSettings({
        ...InMemory.testEnv,
        METRICS__STATUS_TOKEN: "short one",
      }).pipe(
        Effect.flip,
        Effect.map((e) => e.problems),
      )
      assert.deepStrictEqual(problems, [
        "METRICS__STATUS_TOKEN: expected at least 16 printable ASCII characters without spaces (e.g. `openssl rand -hex 16`)",
      ])
      const json = yield* request("/status.json", withToken, { authorization: `Bearer ${TOKEN}` })
      assert.notInclude(json.body, TOKEN)
      assert.include(json.body, "<redacted:METRICS__STATUS_TOKEN>")
    }),
  )
})

describe("/status.json", () => {
  it.effect("never shows the SASL user name, a password or a connection string's credentials", () =>
    Effect.gen(function* () {
      const env = {
        KAFKA__API_KEY: "FAKEAPIKEY7Q2Z",
        KAFKA__API_SECRET: "FAKE-api-secret-91ab",
        MONGODB__CONNECTION_STRING: "mongodb+srv://FAKEUSER:FAKE-mongo-pw-33@cluster0.example.net/",
      }
      const json = yield* request("/status.json", env)
      assert.strictEqual(json.status, 200)
      for (const value of ["FAKEAPIKEY7Q2Z", "FAKE-api-secret-91ab", "FAKEUSER", "FAKE-mongo-pw-33"])
        assert.notInclude(json.body, value)
      const settings = (JSON.parse(json.body) as { settings: { kafka: { sasl: unknown } } }).settings
      assert.deepStrictEqual(settings.kafka.sasl, {
        username: "<hidden:KAFKA__API_KEY>",
        password: "<redacted:KAFKA__API_SECRET>",
      })
    }),
  )
})

describe("METRICS__HOST", () => {
  const freePort = Effect.promise(
    () =>
      new Promise<number>((done) => {
        const server = createServer().listen(0, "127.0.0.1", () => {
          const address = server.address()
          server.close(() => done(typeof address === "object" && address !== null ? address.port : 0))
        })
      }),
  )

  /** Whether /healthz answers on `address` while the HTTP layer listens on `host` (a real port). */
  const reachable = (host: string, addresses: ReadonlyArray<string>) =>
    Effect.gen(function* () {
      const settings = yield* decodeSettings({ ...InMemory.testEnv, METRICS__HOST: host })
      const port = yield* freePort
      const app = Http.layer({ ...settings.metrics, port }).pipe(
        Layer.provide(
          Layer.mergeAll(
            Layer.succeed(Status, yield* make(settings)),
            Layer.succeed(Readiness, { reasons: Effect.succeed([]) }),
          ),
        ),
      )
      return yield* Layer.build(app).pipe(
        Effect.andThen(
          Effect.forEach(addresses, (address) =>
            Effect.promise(() =>
              fetch(`http://${address}:${port}/healthz`).then(
                (r) => r.status === 200,
                () => false,
              ),
            ),
          ),
        ),
        Effect.scoped,
      )
    })

  it.effect(
    "is every interface by default (::, IPv6 and IPv4); 127.0.0.1 keeps the port to this machine's IPv4 loopback",
    () =>
      Effect.gen(function* () {
        const defaults = yield* decodeSettings(InMemory.testEnv)
        assert.strictEqual(defaults.metrics.host, "::")
        assert.deepStrictEqual(yield* reachable("::", ["127.0.0.1", "[::1]"]), [true, true])
        // This test is about the setting: only the address it names answers.
        assert.deepStrictEqual(yield* reachable("127.0.0.1", ["127.0.0.1", "[::1]"]), [true, false])
      }),
  )

  it.effect("a value that is no address is refused, naming the setting", () =>
    Effect.gen(function* () {
      const problems = yield* decodeSettings({ ...InMemory.testEnv, METRICS__HOST: "every interface" }).pipe(
        Effect.flip,
        Effect.map((e) => e.problems),
      )
      assert.deepStrictEqual(problems, [
        'METRICS__HOST: expected an address to listen on (::, 0.0.0.0, 127.0.0.1, a host name), got "every interface"',
      ])
    }),
  )
})
