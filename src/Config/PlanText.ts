/**
 * The `plan` view of a checked pipeline: its tiers as the runtime runs them (tasks in one tier
 * have no dependency on each other and may run in parallel; the sinks run after every
 * transform), where branches merge and what each brings, what each sink writes and which
 * filters stand on its way, and the graph as declared, as Mermaid, ready to paste into a
 * Markdown file (filters drawn as hexagons, merges as circles).
 */
import { Result } from "effect"
import { type GraphNode, toMermaid, validateGraph } from "../Dag/Graph.js"
import { writesOf } from "../Tasks/Library.js"
import { ancestorsOf } from "./PipelineChecks.js"
import type { PipelineSpec } from "./PipelineSpec.js"
import { isSink, isSinkTask } from "./SinkKinds.js"

const quoted = (names: Iterable<string>) => [...names].map((name) => `"${name}"`).join(", ")

export const describePlan = (spec: PipelineSpec): string => {
  const types = new Map(spec.tasks.map((task) => [task.name, task.type]))
  const transforms = spec.tasks.filter((task) => !isSinkTask(task))
  const sinks = spec.tasks.filter((task) => isSink(task.type))
  const transformNames = transforms.map((task) => task.name)
  // As the runtime builds it: every sink after every transform (Pipeline/PipelineDag.ts).
  const asRun: ReadonlyArray<GraphNode> = spec.tasks.map((task) =>
    isSink(task.type) ? { name: task.name, dependsOn: transformNames } : task,
  )
  const ancestors = ancestorsOf(spec.tasks)
  const lines = [
    `Pipeline${spec.name === undefined ? "" : ` "${spec.name}"`}: ${spec.tasks.length} tasks, key ${spec.key.join(", ")}`,
    "",
    "Tiers (the tasks of a tier may run in parallel; the sinks run after every transform):",
  ]
  const tiers = validateGraph(asRun)
  if (Result.isSuccess(tiers)) {
    tiers.success.forEach((tier, index) => {
      lines.push(`  ${index + 1}. ${tier.map((name) => `${name} (${types.get(name)})`).join(", ")}`)
    })
  } else {
    // A decoded spec has a valid graph; this only shows when a spec was built by hand.
    lines.push(`  none: ${tiers.failure.message}`)
  }

  const merges = transforms.filter((task) => task.dependsOn.length > 1)
  if (merges.length > 0) {
    lines.push(
      "",
      "Merges (a record takes the fields each branch wrote, and the worst status of its branches):",
    )
    for (const merge of merges) {
      const [first, ...others] = merge.dependsOn
      const firstBranch = new Set([first!, ...(ancestors.get(first!) ?? [])])
      const brought = others.map((upstream) => {
        const own = [upstream, ...(ancestors.get(upstream) ?? [])].filter((name) => !firstBranch.has(name))
        const fields = own.flatMap((name) => {
          const task = transforms.find((t) => t.name === name)
          return task === undefined ? [] : writesOf(task)
        })
        return `${upstream} brings ${fields.length === 0 ? "no fields" : [...new Set(fields)].join(", ")}`
      })
      lines.push(
        `  ${merge.name} reads ${quoted(merge.dependsOn)}: ${first} as it stands; ${brought.join("; ")}`,
      )
    }
  }

  lines.push("", "Sinks (each writes the records as they stand at the task it reads):")
  for (const sink of sinks) {
    const reads = sink.dependsOn[0]
    const path = reads === undefined ? [] : [reads, ...(ancestors.get(reads) ?? [])]
    const filters = path.filter((name) => types.get(name) === "filter")
    lines.push(
      `  ${sink.name} (${sink.type}) reads ${reads === undefined ? "the batch as parsed" : `"${reads}"`}${filters.length === 0 ? "" : `, filtered by ${quoted(filters)}`}`,
    )
  }

  const shapes = spec.tasks.flatMap((task) => {
    const id = /^[A-Za-z_][A-Za-z0-9_]*$/.test(task.name) ? task.name : undefined
    if (id === undefined) return []
    if (task.type === "filter") return [`  ${id}{{"${task.name}"}}`]
    if (task.dependsOn.length > 1 && !isSink(task.type)) return [`  ${id}(("${task.name}"))`]
    return []
  })
  const mermaid = toMermaid(spec.tasks).split("\n")
  lines.push("", "```mermaid", mermaid[0]!, ...shapes, ...mermaid.slice(1), "```")
  return lines.join("\n")
}
