/**
 * The filter's condition language, as a table: each operator, the combinators, values of the
 * wrong type (no match, never a throw), and what the filter does to records that do not match
 * (filtered, untouched otherwise) and to records that are already out (passed on as they are).
 */
import { assert, describe, it } from "@effect/vitest"
import type { JsonObject } from "../../src/Domain/Record.js"
import { FilterSettings, make } from "../../src/Tasks/Filter.js"
import { make as makeProject, ProjectSettings } from "../../src/Tasks/Project.js"
import { batch, invalidRecord, settingsOf, snapshot } from "./support.js"

const order: JsonObject = {
  status: "paid",
  amount: 120.5,
  created_at: "2026-11-27T10:00:00.000Z",
  customer: { country: "DE", vip: null },
  tags: ["a", "b"],
}

const matches = (where: unknown, value: JsonObject = order): boolean => {
  const filter = make(settingsOf(FilterSettings)({ where }))
  return filter(batch(value)).records[0]!.status === "valid"
}

describe("filter conditions", () => {
  const table: ReadonlyArray<readonly [string, unknown, boolean]> = [
    ["equals a string", { field: "status", equals: "paid" }, true],
    ["equals another string", { field: "status", equals: "pending" }, false],
    ["equals a number", { field: "amount", equals: 120.5 }, true],
    ["equals an array, exactly", { field: "tags", equals: ["a", "b"] }, true],
    ["equals an array in another order", { field: "tags", equals: ["b", "a"] }, false],
    ["equals on a nested path", { field: "customer.country", equals: "DE" }, true],
    ["equals on a missing field", { field: "nothing", equals: "paid" }, false],
    ["in", { field: "status", in: ["shipped", "paid"] }, true],
    ["in, not there", { field: "status", in: ["shipped"] }, false],
    ["exists", { field: "amount", exists: true }, true],
    ["exists on null", { field: "customer.vip", exists: true }, false],
    ["not exists on null", { field: "customer.vip", exists: false }, true],
    ["not exists on a missing field", { field: "discount", exists: false }, true],
    ["gt", { field: "amount", gt: 100 }, true],
    ["gt at the bound", { field: "amount", gt: 120.5 }, false],
    ["gte at the bound", { field: "amount", gte: 120.5 }, true],
    ["lt", { field: "amount", lt: 100 }, false],
    ["lte", { field: "amount", lte: 120.5 }, true],
    ["gt on timestamps as text", { field: "created_at", gt: "2026-11-01" }, true],
    ["lt on timestamps as text", { field: "created_at", lt: "2026-11-01" }, false],
    ["a number bound on a string field", { field: "status", gt: 1 }, false],
    ["a string bound on a number field", { field: "amount", gt: "1" }, false],
    [
      "and",
      {
        and: [
          { field: "status", equals: "paid" },
          { field: "amount", gt: 100 },
        ],
      },
      true,
    ],
    [
      "and with one false",
      {
        and: [
          { field: "status", equals: "paid" },
          { field: "amount", gt: 200 },
        ],
      },
      false,
    ],
    [
      "or",
      {
        or: [
          { field: "status", equals: "pending" },
          { field: "amount", gt: 100 },
        ],
      },
      true,
    ],
    ["not", { not: { field: "status", equals: "paid" } }, false],
    [
      "nested",
      {
        or: [
          { and: [{ field: "customer.country", in: ["DE", "FR"] }, { not: { field: "amount", lt: 50 } }] },
        ],
      },
      true,
    ],
  ]
  for (const [what, where, expected] of table) {
    it(`${what}: ${expected ? "passes" : "filtered"}`, () => assert.strictEqual(matches(where), expected))
  }

  it("filters the records that do not match, passes the rest and those already out untouched", () => {
    const filter = make(settingsOf(FilterSettings)({ where: { field: "status", equals: "paid" } }))
    const input = [
      ...batch(order, { ...order, status: "pending" }),
      invalidRecord("2", { status: "pending" }),
    ]
    const before = snapshot(input)
    const out = filter(input)
    assert.deepStrictEqual(
      out.records.map((r) => r.status),
      ["valid", "filtered", "invalid"],
    )
    assert.strictEqual(out.records[0], input[0])
    assert.strictEqual(out.records[2], input[2])
    assert.deepStrictEqual(out.records[1]!.value, input[1]!.value)
    assert.deepStrictEqual(out.stats, { records: 3, passed: 1, filtered: 1, invalidated: 0, skipped: 1 })
    assert.deepStrictEqual(input, before)
  })
})

describe("project", () => {
  it("keeps only the listed fields, nested ones with their parents, and never invalidates", () => {
    const project = makeProject(
      settingsOf(ProjectSettings)({ fields: ["status", "customer.country", "missing"] }),
    )
    const input = batch(order)
    const before = snapshot(input)
    const out = project(input)
    assert.deepStrictEqual(out.records[0]!.value, { status: "paid", customer: { country: "DE" } })
    assert.strictEqual(out.records[0]!.status, "valid")
    assert.deepStrictEqual(input, before)
    assert.deepStrictEqual(out.stats, { records: 1, projected: 1, invalidated: 0, skipped: 0 })
  })
})
