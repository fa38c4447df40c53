/**
 * A data-quality pattern cannot hold a partition: `^(\w+\s?)*$` backtracks catastrophically in
 * JavaScript's own engine (211 ms on 24 characters, twice as long with each one more), so a
 * record of a few thousand characters would take longer than the universe has existed. Patterns
 * run on RE2, in time linear in the value, and values past `maxLength` are not tested at all:
 * the records are dead-lettered with the rule's reason and the partition goes on, at the
 * service's defaults (in-memory stack, the test's own timeout a backtracking engine would blow
 * by orders of magnitude).
 */
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, it, layer } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { loadPipelineFile } from "../../src/Config/PipelineFile.js"
import { runPipeline } from "../../src/Pipeline/Service.js"
import * as InMemory from "../support/InMemory.js"

const pipeline = `
name: words
key: [id]
tasks:
  - name: quality
    type: data_quality
    settings:
      rules:
        - { rule: Pattern, field: words, pattern: '^(\\w+\\s?)*$' }
  - { name: mongodb, type: mongodb_sink, dependsOn: [quality] }
  - { name: kafka, type: kafka_sink, dependsOn: [quality] }
`

const file = join(mkdtempSync(join(tmpdir(), "patterns-")), "pipeline.yaml")
writeFileSync(file, pipeline)

/** Words, then a character that makes the whole value fail: the worst case for a backtracking engine. */
const evil = (i: number, length: number) => ({ id: `evil-${i}`, words: `${"ab ".repeat(length / 3)}!` })
const clean = (i: number) => ({ id: `clean-${i}`, words: "just some words" })

layer(InMemory.layer())("a catastrophic pattern", (it) => {
  it.effect(
    "dead-letters the values it rejects, long ones unread, and the partition goes on",
    () =>
      Effect.gen(function* () {
        const stack = yield* InMemory.MemoryStack
        yield* stack.reset
        const spec = yield* loadPipelineFile(file)
        const fiber = yield* Effect.forkScoped(runPipeline(spec).pipe(Effect.scoped))
        const values = [
          ...Array.from({ length: 200 }, (_, i) => evil(i, 3_000)),
          { id: "too-long", words: "ab ".repeat(2_000) },
          ...Array.from({ length: 50 }, (_, i) => clean(i)),
        ]
        yield* stack.append(0, values)
        yield* stack.untilCommitted

        assert.strictEqual(stack.committed(0), values.length)
        assert.deepStrictEqual(
          [...stack.documents.keys()].sort(),
          Array.from({ length: 50 }, (_, i) => `clean-${i}`).sort(),
        )
        const dead = stack.sent("orders.dlq")
        assert.strictEqual(dead.length, 201)
        const reasons = (message: (typeof dead)[number]) =>
          JSON.parse(String(message.headers?.["pipeline.error.reasons"])) as ReadonlyArray<{
            readonly rule: string
            readonly message: string
          }>
        const tooLong = dead.find((m) => String(m.value).includes('"too-long"'))
        assert.isDefined(tooLong)
        assert.deepStrictEqual(
          reasons(tooLong!).map((r) => [r.rule, r.message]),
          [
            [
              "Pattern",
              "words is 6000 characters long, longer than the 4096 a pattern is tested on (maxLength)",
            ],
          ],
        )
        for (const message of dead.filter((m) => m !== tooLong)) {
          const [reason] = reasons(message)
          assert.strictEqual(reason?.rule, "Pattern")
          assert.include(reason?.message, "does not match ^(\\w+\\s?)*$")
        }
        yield* Fiber.interrupt(fiber)
      }),
    // A backtracking engine would need far longer than this for any one of the 200 values.
    { timeout: 30_000 },
  )
})

describe("the same pattern, where JavaScript's engine would take it", () => {
  it("is refused with its reason when it needs what RE2 does not have", async () => {
    const withLookahead = join(mkdtempSync(join(tmpdir(), "patterns-")), "pipeline.yaml")
    writeFileSync(
      withLookahead,
      pipeline.replace("'^(\\w+\\s?)*$'", () => "'^(?=\\w)(\\w+)\\1$'"),
    )
    const { message } = await Effect.runPromise(Effect.flip(loadPipelineFile(withLookahead)))
    assert.include(message, "tasks[0].settings.rules[0].pattern: invalid regular expression")
    assert.include(
      message,
      "patterns run on RE2, in time linear in the value: no lookarounds, no backreferences",
    )
  })
})
