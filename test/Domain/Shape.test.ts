/**
 * The one-pass walk over a record's value that admission runs before any sink: numbers a
 * double cannot hold and text that is not well-formed UTF-16, wherever they are, with the
 * path of the field; the rules every sink shares win over a field name only MongoDB refuses.
 */
import { assert, describe, it } from "@effect/vitest"
import type { Json } from "../../src/Domain/Record.js"
import { shapeProblem } from "../../src/Domain/Shape.js"
import { parseExact } from "../../src/Pipeline/Parse.js"

const parsed = (text: string): Json => parseExact(text) as Json

describe("numbers a double cannot hold (rule number)", () => {
  const table: ReadonlyArray<readonly [string, string, string, string]> = [
    // [what, JSON text, path, what the message says it became]
    ["1e400 at the top level", '{"event_id":"a1","amount":1e400}', "amount", "it overflows to Infinity"],
    ["-1e400 at the top level", '{"event_id":"a1","amount":-1e400}', "amount", "it overflows to -Infinity"],
    ["in a nested object", '{"order":{"lines":{"price":1e999}}}', "order.lines.price", "Infinity"],
    ["in an array", '{"tags":["a",1,-1e999]}', "tags[2]", "-Infinity"],
    ["in an object in arrays", '{"a":[[{"b":[0,1e400]}]]}', "a[0][0].b[1]", "Infinity"],
    ["beside well-formed values", '{"x":1.5,"y":[1e300,5e-324],"z":1e400}', "z", "Infinity"],
  ]
  for (const [what, text, path, became] of table) {
    it(`${what}: ${path}`, () => {
      const problem = shapeProblem(parsed(text), 100)
      assert.strictEqual(problem?.rule, "number")
      assert.strictEqual(problem?.field, path)
      assert.include(problem?.message ?? "", `field ${path} is a number that cannot be stored as a double`)
      assert.include(problem?.message ?? "", became)
    })
  }

  it("gives the message of the issue for 1e400 in amount", () => {
    assert.strictEqual(
      shapeProblem(parsed('{"event_id":"a1","amount":1e400}'), 100)?.message,
      "field amount is a number that cannot be stored as a double (it overflows to Infinity); JSON text holds it, MongoDB and the sink topic would not store the same value",
    )
  })

  it("finds NaN a transform left behind", () => {
    assert.include(shapeProblem({ ratio: Number.NaN }, 100)?.message ?? "", "it is NaN")
  })

  it("leaves the largest and smallest doubles, -0 and integers kept as text alone", () => {
    const value = parsed(
      '{"max":1.7976931348623157e308,"min":5e-324,"zero":-0,"id":12345678901234567891,"under":1e-400}',
    )
    assert.isUndefined(shapeProblem(value, 100))
  })

  it("shows a path through odd names quoted, and a long one by its end", () => {
    assert.strictEqual(shapeProblem({ "a.b": { "c d": Infinity } }, 100)?.field, '"a.b"."c d"')
    let deep: Json = { n: Infinity }
    for (let i = 0; i < 80; i++) deep = { level: deep }
    const field = shapeProblem(deep as Json, 100)?.field ?? ""
    assert.isTrue(field.startsWith("…") && field.endsWith("level.n"), field)
    assert.isAtMost(field.length, 201)
  })
})

describe("text that is not well-formed UTF-16 (rule text)", () => {
  it("finds an unpaired surrogate in a value, at the top level and in arrays", () => {
    const top = shapeProblem(parsed('{"name":"a\\ud800b"}'), 100)
    assert.deepStrictEqual([top?.rule, top?.field], ["text", "name"])
    assert.include(top?.message ?? "", "field name is a string that is not well-formed UTF-16")
    const low = shapeProblem(parsed('{"tags":["ok",{"x":"\\udc00"}]}'), 100)
    assert.deepStrictEqual([low?.rule, low?.field], ["text", "tags[1].x"])
    const last = shapeProblem(parsed('{"tags":["ok","\\ud83d"]}'), 100)
    assert.deepStrictEqual([last?.rule, last?.field], ["text", "tags[1]"])
  })

  it("finds one in a field name, and names it escaped", () => {
    const top = shapeProblem(parsed('{"\\ud800":1}'), 100)
    assert.deepStrictEqual([top?.rule, top?.field], ["text", '"\\ud800"'])
    assert.include(top?.message ?? "", 'field name "\\ud800" is not well-formed UTF-16')
    const nested = shapeProblem(parsed('{"tags":[{"a\\udfffb":"x"}]}'), 100)
    assert.deepStrictEqual([nested?.rule, nested?.field], ["text", 'tags[0]."a\\udfffb"'])
    assert.include(nested?.message ?? "", 'field name "a\\udfffb" in tags[0] is not well-formed UTF-16')
    // The message is plain ASCII here: a header can carry it as it is.
    assert.isTrue(nested?.message.isWellFormed())
  })

  it("takes well-formed astral characters (emoji), escaped or not, in values and names", () => {
    assert.isUndefined(shapeProblem(parsed('{"😀":"😀","e":"\\ud83d\\ude00","t":["ü","\\u00e9"]}'), 100))
  })
})

describe("which problem is reported", () => {
  it("reports a problem for every sink before a field name only MongoDB refuses", () => {
    assert.strictEqual(shapeProblem({ $x: 1, y: Infinity }, 100)?.rule, "number")
    assert.strictEqual(shapeProblem({ a: [{ $x: 1 }], b: ["\ud800"] }, 100)?.rule, "text")
    assert.strictEqual(shapeProblem({ $x: 1, y: [[[1]]] }, 3)?.rule, "depth")
    assert.strictEqual(shapeProblem({ $x: 1, y: [1] }, 3)?.rule, "field_name")
  })

  it("stops at the first problem for every sink, however large the rest", () => {
    const value = { bad: Infinity, rest: Array.from({ length: 1000 }, () => ({ $x: "\ud800" })) }
    assert.strictEqual(shapeProblem(value, 100)?.rule, "number")
  })

  it("finds nothing in an ordinary record", () => {
    assert.isUndefined(
      shapeProblem(
        parsed('{"event_id":"e1","amount":12.5,"tags":["gift",null,true],"customer":{"name":"Zoë 😀"}}'),
        100,
      ),
    )
  })
})
