/**
 * The status page's files (HTML, script, style), shipped in `page/` beside this module (the
 * build copies them next to the compiled code) and read once at start. They are served from
 * memory, and the browser is told to load nothing from anywhere but the service itself.
 */
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { Data, Effect } from "effect"

export interface PageFile {
  /** The path it is served at. */
  readonly route: `/${string}`
  readonly contentType: string
  readonly body: Uint8Array
}

export class StatusPageMissing extends Data.TaggedError("StatusPageMissing")<{
  readonly dir: string
  readonly cause: unknown
}> {
  override get message() {
    return `the status page's files are missing from ${this.dir}: ${this.cause instanceof Error ? this.cause.message : String(this.cause)}`
  }
}

const files = [
  { route: "/", name: "index.html", contentType: "text/html; charset=utf-8" },
  { route: "/status.js", name: "status.js", contentType: "text/javascript; charset=utf-8" },
  { route: "/status.css", name: "status.css", contentType: "text/css; charset=utf-8" },
] as const

export const pageDir = fileURLToPath(new URL("./page/", import.meta.url))

export const loadPage = (dir: string = pageDir): Effect.Effect<ReadonlyArray<PageFile>, StatusPageMissing> =>
  Effect.try({
    try: () =>
      files.map(
        (f): PageFile => ({
          route: f.route,
          contentType: f.contentType,
          body: readFileSync(join(dir, f.name)),
        }),
      ),
    catch: (cause) => new StatusPageMissing({ dir, cause }),
  })

/** Same-origin only: the page works offline and cannot be made to load anything else. */
export const pageHeaders = {
  "cache-control": "no-cache",
  "content-security-policy":
    "default-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
} as const
