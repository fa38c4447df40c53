/**
 * The `plan` view of a checked pipeline: its tiers (tasks in one tier have no dependency on
 * each other and may run in parallel) and the graph as Mermaid, ready to paste into a
 * Markdown file.
 */
import { Result } from "effect"
import { toMermaid, validateGraph } from "../Dag/Graph.js"
import type { PipelineSpec } from "./PipelineSpec.js"

export const describePlan = (spec: PipelineSpec): string => {
  const types = new Map(spec.tasks.map((task) => [task.name, task.type]))
  const graph = validateGraph(spec.tasks)
  const lines = [
    `Pipeline${spec.name === undefined ? "" : ` "${spec.name}"`}: ${spec.tasks.length} tasks, key ${spec.key.join(", ")}`,
    "",
    "Tiers (the tasks of a tier may run in parallel):",
  ]
  if (Result.isSuccess(graph)) {
    graph.success.forEach((tier, index) => {
      lines.push(`  ${index + 1}. ${tier.map((name) => `${name} (${types.get(name)})`).join(", ")}`)
    })
  } else {
    // A decoded spec has a valid graph; this only shows when a spec was built by hand.
    lines.push(`  none: ${graph.failure.message}`)
  }
  lines.push("", "```mermaid", toMermaid(spec.tasks), "```")
  return lines.join("\n")
}
