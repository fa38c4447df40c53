import { assert, describe, it } from "@effect/vitest"
import { Result } from "effect"
import {
  type DagProblem,
  DagValidationError,
  type GraphNode,
  toMermaid,
  validateGraph,
} from "../../src/Dag/Graph.js"

const node = (name: string, ...dependsOn: Array<string>): GraphNode => ({ name, dependsOn })

const problemsOf = (nodes: ReadonlyArray<GraphNode>): ReadonlyArray<DagProblem> => {
  const result = validateGraph(nodes)
  if (Result.isSuccess(result)) return assert.fail(`expected a validation error, got ${result.success}`)
  assert.instanceOf(result.failure, DagValidationError)
  return result.failure.problems
}

type Bare<P> = P extends DagProblem ? Omit<P, "message"> : never

const strip = (problems: ReadonlyArray<DagProblem>): Array<Bare<DagProblem>> =>
  problems.map(({ message: _message, ...rest }) => rest)

describe("validateGraph", () => {
  const pipeline = [
    node("mapping"),
    node("conversion", "mapping"),
    node("standardization", "conversion"),
    node("duplicates", "standardization"),
    node("quality", "duplicates"),
    node("mongo", "quality"),
    node("kafka", "quality"),
  ]

  it("gives the tiers of a valid graph in declaration order", () => {
    const result = validateGraph(pipeline)
    assert.isTrue(Result.isSuccess(result))
    if (Result.isSuccess(result)) {
      assert.deepStrictEqual(result.success, [
        ["mapping"],
        ["conversion"],
        ["standardization"],
        ["duplicates"],
        ["quality"],
        ["mongo", "kafka"],
      ])
    }
  })

  it("places a task one tier below its deepest dependency", () => {
    const result = validateGraph([node("d", "a", "c"), node("c", "b"), node("b", "a"), node("a"), node("e")])
    assert.deepStrictEqual(Result.isSuccess(result) ? result.success : undefined, [
      ["a", "e"],
      ["b"],
      ["c"],
      ["d"],
    ])
  })

  const invalid: ReadonlyArray<{
    readonly title: string
    readonly nodes: ReadonlyArray<GraphNode>
    readonly problems: ReadonlyArray<Bare<DagProblem>>
    readonly mentions: ReadonlyArray<string>
  }> = [
    { title: "empty graph", nodes: [], problems: [{ _tag: "EmptyGraph" }], mentions: ["no tasks"] },
    {
      title: "duplicate name (reported once)",
      nodes: [node("a"), node("b", "a"), node("a"), node("a")],
      problems: [{ _tag: "DuplicateName", name: "a" }],
      mentions: ['"a"'],
    },
    {
      title: "unknown dependency",
      nodes: [node("a"), node("b", "a", "ghost")],
      problems: [{ _tag: "UnknownDependency", task: "b", dependency: "ghost" }],
      mentions: ['"b"', '"ghost"'],
    },
    {
      title: "self dependency",
      nodes: [node("a", "a")],
      problems: [{ _tag: "Cycle", path: ["a", "a"] }],
      mentions: ['"a" -> "a"'],
    },
    {
      title: "three-task cycle, in order, starting at the first declared",
      nodes: [node("root"), node("a", "b", "root"), node("b", "c"), node("c", "a")],
      problems: [{ _tag: "Cycle", path: ["a", "b", "c", "a"] }],
      mentions: ['"a" -> "b" -> "c" -> "a"'],
    },
    {
      title: "two separate cycles",
      nodes: [node("x", "y"), node("y", "x"), node("p", "q"), node("q", "p")],
      problems: [
        { _tag: "Cycle", path: ["x", "y", "x"] },
        { _tag: "Cycle", path: ["p", "q", "p"] },
      ],
      mentions: ['"x" -> "y" -> "x"', '"p" -> "q" -> "p"'],
    },
    {
      title: "every problem at once, in a fixed order",
      nodes: [node("a", "b"), node("b", "a"), node("c", "missing"), node("c"), node("d", "nowhere", "a")],
      problems: [
        { _tag: "DuplicateName", name: "c" },
        { _tag: "UnknownDependency", task: "c", dependency: "missing" },
        { _tag: "UnknownDependency", task: "d", dependency: "nowhere" },
        { _tag: "Cycle", path: ["a", "b", "a"] },
      ],
      mentions: ['"c"', '"missing"', '"nowhere"', '"a" -> "b" -> "a"'],
    },
  ]

  for (const { title, nodes, problems, mentions } of invalid) {
    it(`rejects: ${title}`, () => {
      const found = problemsOf(nodes)
      assert.deepStrictEqual(strip(found), problems)
      const result = validateGraph(nodes)
      const message = Result.isFailure(result) ? result.failure.message : ""
      assert.strictEqual(message.split("\n").length, problems.length + 1)
      for (const mention of mentions) assert.include(message, mention)
    })
  }
})

describe("toMermaid", () => {
  it("draws dependency edges and lists isolated tasks", () => {
    assert.strictEqual(
      toMermaid([node("a"), node("b", "a"), node("c", "a", "b"), node("lonely")]),
      ["graph TD", "  a --> b", "  a --> c", "  b --> c", "  lonely"].join("\n"),
    )
  })

  it("labels names that are not valid Mermaid ids", () => {
    assert.strictEqual(
      toMermaid([node("field-mapping"), node("type_conversion", "field-mapping"), node('say "hi"')]),
      [
        "graph TD",
        '  task0["field-mapping"]',
        '  task1["say #quot;hi#quot;"]',
        "  task0 --> type_conversion",
      ].join("\n"),
    )
  })
})
