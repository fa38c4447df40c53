/**
 * The documents an operator reads say what the code does: every metric the code registers is in
 * docs/OPERATIONS.md's metric table and nothing else is; every setting the service reads is in
 * .env.example, and .env.example names no variable the service would refuse as unknown.
 */
import { readdirSync, readFileSync, statSync } from "node:fs"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import { decodeSettings } from "../src/Config/AppConfig.js"

const root = join(import.meta.dirname, "..")
const read = (path: string) => readFileSync(join(root, path), "utf8")

const sources = (dir: string): ReadonlyArray<string> =>
  readdirSync(join(root, dir)).flatMap((name) => {
    const path = join(dir, name)
    if (statSync(join(root, path)).isDirectory()) return sources(path)
    return name.endsWith(".ts") ? [path] : []
  })

const sorted = (names: Iterable<string>) => [...new Set(names)].sort()

describe("the documents", () => {
  it("OPERATIONS' metric table lists exactly the metrics the code registers", () => {
    const registered = sources("src").flatMap((path) =>
      [...read(path).matchAll(/Metric\.(?:counter|gauge|histogram|summary|frequency)\(\s*"([a-z_]+)"/g)].map(
        (m) => m[1]!,
      ),
    )
    assert.isAbove(registered.length, 10, "the search for registered metrics finds them")
    const operations = read("docs/OPERATIONS.md")
    const table = operations.slice(
      operations.indexOf("## Metrics"),
      operations.indexOf("\n## ", operations.indexOf("## Metrics") + 1),
    )
    const documented = [...table.matchAll(/^\| `(pipeline_[a-z_]+)` \|/gm)].map((m) => m[1]!)
    assert.deepStrictEqual(sorted(documented), sorted(registered))
  })

  it(".env.example names every setting the service reads, and none that it does not", async () => {
    const example = read(".env.example")
    const listed = [...example.matchAll(/^#? ?([A-Z][A-Z0-9_]*__[A-Z0-9_]+)=/gm)].map((m) => m[1]!)
    const config = read("src/Config/AppConfig.ts")
    const readByService = [
      ...config.matchAll(/r\s*\.(?:string|int|seconds|oneOf|boolean|optional|secret)\(\s*"([A-Z0-9_]+)"/g),
      ...config.matchAll(/readElsewhere = \[([^\]]*)\]/g),
    ].flatMap((m) => [...m[1]!.matchAll(/[A-Z][A-Z0-9_]*__[A-Z0-9_]+/g)].map((n) => n[0]))
    assert.isAbove(readByService.length, 30, "the search for the settings read finds them")
    const generator = sources("src/Generator").flatMap((path) =>
      [...read(path).matchAll(/"(TEST_DATA__[A-Z_]+)"/g)].map((m) => m[1]!),
    )
    assert.deepStrictEqual(sorted(listed), sorted([...readByService, ...generator]))

    // Every variable it lists, set to its example value, is one the service takes.
    const env: Record<string, string> = {}
    for (const [, name, value] of example.matchAll(/^#? ?([A-Z][A-Z0-9_]*__[A-Z0-9_]+)=(\S*)/gm))
      if (!name!.startsWith("TEST_DATA__")) env[name!] = value ?? ""
    const exit = await Effect.runPromiseExit(
      decodeSettings({
        ...env,
        KAFKA__API_KEY: "key",
        KAFKA__API_SECRET: "secret",
        METRICS__STATUS_TOKEN: "0123456789abcdef0123",
      }),
    )
    assert.isTrue(Exit.isSuccess(exit), Exit.isFailure(exit) ? String(exit.cause) : "")
  })
})
