import { assert, describe, it } from "@effect/vitest"
import { deletePath, getPath, parsePath, pathProblem, setPath } from "../../src/Domain/Path.js"
import type { JsonObject } from "../../src/Domain/Record.js"

describe("Path", () => {
  it("reads own fields only", () => {
    const value: JsonObject = { a: { b: 1 }, list: [{ c: 2 }] }
    assert.strictEqual(getPath(value, parsePath("a.b")), 1)
    assert.strictEqual(getPath(value, parsePath("toString")), undefined)
    assert.strictEqual(getPath(value, parsePath("a.constructor")), undefined)
    assert.strictEqual(getPath(value, parsePath("list.0.c")), undefined)
    assert.strictEqual(getPath(value, parsePath("a.b.c")), undefined)
  })

  it("writes through copies, leaving shared nested objects alone", () => {
    const original: JsonObject = { a: { b: 1, keep: true } }
    const copy = { ...original }
    assert.isTrue(setPath(copy, parsePath("a.c"), 2))
    assert.isTrue(setPath(copy, parsePath("x.y.z"), 3))
    assert.deepStrictEqual(copy, { a: { b: 1, keep: true, c: 2 }, x: { y: { z: 3 } } })
    assert.deepStrictEqual(original, { a: { b: 1, keep: true } })
    assert.isFalse(setPath(copy, parsePath("a.b.c"), 4), "a number is in the way")
  })

  it("deletes through copies, pruning emptied objects when asked", () => {
    const original: JsonObject = { a: { b: { c: 1 } }, d: { e: 1, f: 2 } }
    const copy = { ...original }
    assert.isTrue(deletePath(copy, parsePath("a.b.c"), true))
    assert.isTrue(deletePath(copy, parsePath("d.e"), true))
    assert.isFalse(deletePath(copy, parsePath("nothing.here")))
    assert.deepStrictEqual(copy, { d: { f: 2 } })
    assert.deepStrictEqual(original, { a: { b: { c: 1 } }, d: { e: 1, f: 2 } })
  })

  it("refuses unusable paths", () => {
    assert.isUndefined(pathProblem("customer.email"))
    assert.isDefined(pathProblem(""))
    assert.isDefined(pathProblem("a..b"))
    assert.isDefined(pathProblem("a.__proto__"))
  })
})

describe("Path and __proto__", () => {
  it("never reads, writes or deletes through __proto__, even when parsed directly", () => {
    const value = JSON.parse('{"__proto__": {"polluted": true}, "a": 1}') as JsonObject
    const path = parsePath("__proto__.polluted")
    assert.strictEqual(getPath(value, parsePath("__proto__")), undefined)
    assert.isFalse(setPath(value, path, true))
    assert.isFalse(setPath(value, parsePath("__proto__"), {}))
    assert.isFalse(deletePath(value, path))
    assert.strictEqual(Object.getPrototypeOf(value), Object.prototype)
    assert.isUndefined(({} as Record<string, unknown>).polluted)
  })
})
