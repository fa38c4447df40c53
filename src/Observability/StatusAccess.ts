/**
 * The status page behind METRICS__STATUS_TOKEN. With a token set, `/`, `/status.json` and the
 * page's script and style answer 401 unless the request carries it: as `Authorization: Bearer
 * <token>` (scripts, curl), or as the cookie a browser gets by opening `/?token=<token>` once,
 * which redirects to `/` so that the token leaves the address bar. The cookie holds a value
 * derived from the token (an HMAC), not the token; it is HttpOnly and SameSite=Strict, and dies
 * with the browser session or when the token changes. Every comparison takes the same time
 * whatever the guess. /metrics, /healthz and /readyz never ask (see HttpServer.ts).
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto"
import { Effect, Redacted } from "effect"
import { HttpServerRequest, HttpServerResponse } from "effect/http"

export const cookieName = "pipeline_status"

const digest = (text: string): Buffer => createHash("sha256").update(text).digest()

/** Equal in constant time: both sides are hashed to 32 bytes first, so not even the length shows. */
const same = (given: string, expected: string): boolean => timingSafeEqual(digest(given), digest(expected))

/** What the browser's cookie holds: derived from the token, useless without the service's token. */
export const sessionOf = (token: string): string =>
  createHmac("sha256", token).update("pipeline status page session").digest("base64url")

const noStore = { "cache-control": "no-store" }

const unauthorized = (text: string) =>
  HttpServerResponse.text(`${text}\n`, {
    status: 401,
    headers: { ...noStore, "www-authenticate": 'Bearer realm="pipeline status"' },
  })

export const askForToken = unauthorized(
  "the status page needs its token (METRICS__STATUS_TOKEN): send `Authorization: Bearer <token>`, or open /?token=<token> once in a browser",
)

type Request = Pick<HttpServerRequest.HttpServerRequest, "headers" | "cookies" | "url">

/** The request carries the token, in its header or as the browser's cookie. */
export const carriesToken = (request: Request, token: string): boolean => {
  const authorization = request.headers.authorization
  const bearer = authorization === undefined ? undefined : /^Bearer\s+(\S+)\s*$/i.exec(authorization)?.[1]
  if (bearer !== undefined) return same(bearer, token)
  const cookie = request.cookies[cookieName]
  return cookie !== undefined && same(cookie, sessionOf(token))
}

const tokenInQuery = (url: string): string | undefined =>
  new URL(url, "http://status.invalid").searchParams.get("token") ?? undefined

/**
 * `handler` behind the token (as is when there is none). On `/`, a `?token=` logs the browser
 * in: the cookie and a redirect to `/`, or a 401 for a wrong token.
 */
export const guarded = <E, R>(
  token: Redacted.Redacted<string> | undefined,
  handler: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>,
  options: { readonly login?: boolean } = {},
): Effect.Effect<HttpServerResponse.HttpServerResponse, E, R | HttpServerRequest.HttpServerRequest> =>
  token === undefined
    ? handler
    : HttpServerRequest.HttpServerRequest.use((request) => {
        const expected = Redacted.value(token)
        const given = options.login === true ? tokenInQuery(request.url) : undefined
        if (given !== undefined) {
          if (!same(given, expected)) return Effect.succeed(unauthorized("wrong token"))
          return Effect.succeed(
            HttpServerResponse.redirect("/", { status: 303, headers: noStore }).pipe(
              HttpServerResponse.setCookieUnsafe(cookieName, sessionOf(expected), {
                httpOnly: true,
                sameSite: "strict",
                path: "/",
              }),
            ),
          )
        }
        return carriesToken(request, expected) ? handler : Effect.succeed(askForToken)
      })
