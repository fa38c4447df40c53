/**
 * The shape of a DAG, without anything that runs: validation (every problem at once, so a
 * bad pipeline definition is fixed in one pass), topological tiers for display, and a Mermaid
 * rendering. Pure functions; no Effect runtime needed.
 *
 * Determinism: problems are reported in declaration order (duplicates, then unknown
 * dependencies, then cycles, each in the order the offending task was declared); tiers keep
 * declaration order within a tier, so the listing reads like the pipeline definition.
 */
import { Data, Result } from "effect"

export interface GraphNode {
  readonly name: string
  readonly dependsOn: ReadonlyArray<string>
}

export interface DuplicateName {
  readonly _tag: "DuplicateName"
  readonly name: string
  readonly message: string
}

export interface UnknownDependency {
  readonly _tag: "UnknownDependency"
  readonly task: string
  readonly dependency: string
  readonly message: string
}

/** `path` follows "depends on": path[i] depends on path[i + 1]; it ends where it started. */
export interface Cycle {
  readonly _tag: "Cycle"
  readonly path: ReadonlyArray<string>
  readonly message: string
}

export interface EmptyGraph {
  readonly _tag: "EmptyGraph"
  readonly message: string
}

export type DagProblem = DuplicateName | UnknownDependency | Cycle | EmptyGraph

export const DagProblem = {
  DuplicateName: (name: string): DuplicateName => ({
    _tag: "DuplicateName",
    name,
    message: `duplicate task name "${name}"`,
  }),
  UnknownDependency: (task: string, dependency: string): UnknownDependency => ({
    _tag: "UnknownDependency",
    task,
    dependency,
    message: `task "${task}" depends on unknown task "${dependency}"`,
  }),
  Cycle: (path: ReadonlyArray<string>): Cycle => ({
    _tag: "Cycle",
    path,
    message: `cycle: ${path.map((name) => `"${name}"`).join(" -> ")} (each depends on the next)`,
  }),
  EmptyGraph: (): EmptyGraph => ({ _tag: "EmptyGraph", message: "the graph has no tasks" }),
} as const

export class DagValidationError extends Data.TaggedError("DagValidationError")<{
  readonly problems: ReadonlyArray<DagProblem>
}> {
  override get message(): string {
    return `invalid DAG:\n${this.problems.map((problem) => `  - ${problem.message}`).join("\n")}`
  }
}

export type Tiers = ReadonlyArray<ReadonlyArray<string>>

export const validateGraph = (nodes: ReadonlyArray<GraphNode>): Result.Result<Tiers, DagValidationError> => {
  if (nodes.length === 0) return Result.fail(new DagValidationError({ problems: [DagProblem.EmptyGraph()] }))

  const problems: Array<DagProblem> = []
  // The first declaration of a name wins; later ones are reported and ignored.
  const byName = new Map<string, GraphNode>()
  const reported = new Set<string>()
  for (const node of nodes) {
    if (!byName.has(node.name)) byName.set(node.name, node)
    else if (!reported.has(node.name)) {
      reported.add(node.name)
      problems.push(DagProblem.DuplicateName(node.name))
    }
  }
  for (const node of byName.values()) {
    for (const dependency of new Set(node.dependsOn)) {
      if (!byName.has(dependency)) problems.push(DagProblem.UnknownDependency(node.name, dependency))
    }
  }
  for (const path of findCycles(byName)) problems.push(DagProblem.Cycle(path))

  if (problems.length > 0) return Result.fail(new DagValidationError({ problems }))
  return Result.succeed(tiersOf(byName))
}

const knownDeps = (node: GraphNode, byName: ReadonlyMap<string, GraphNode>): Array<string> =>
  [...new Set(node.dependsOn)].filter((dependency) => byName.has(dependency))

/**
 * One cycle per strongly connected component (Tarjan), so a knot of tasks is reported once
 * rather than as every cycle through it. Each cycle starts at the component's first declared
 * task and is the shortest way back to it.
 */
const findCycles = (byName: ReadonlyMap<string, GraphNode>): Array<ReadonlyArray<string>> => {
  const index = new Map<string, number>()
  const lowLink = new Map<string, number>()
  const onStack = new Set<string>()
  const stack: Array<string> = []
  const components: Array<Set<string>> = []
  let counter = 0

  const connect = (name: string): void => {
    index.set(name, counter)
    lowLink.set(name, counter)
    counter++
    stack.push(name)
    onStack.add(name)
    for (const dependency of knownDeps(byName.get(name)!, byName)) {
      if (!index.has(dependency)) {
        connect(dependency)
        lowLink.set(name, Math.min(lowLink.get(name)!, lowLink.get(dependency)!))
      } else if (onStack.has(dependency)) {
        lowLink.set(name, Math.min(lowLink.get(name)!, index.get(dependency)!))
      }
    }
    if (lowLink.get(name) === index.get(name)) {
      const component = new Set<string>()
      let member: string
      do {
        member = stack.pop()!
        onStack.delete(member)
        component.add(member)
      } while (member !== name)
      components.push(component)
    }
  }
  for (const name of byName.keys()) if (!index.has(name)) connect(name)

  const declared = [...byName.keys()]
  return components
    .filter((component) => {
      const [only] = component
      return component.size > 1 || (only !== undefined && byName.get(only)!.dependsOn.includes(only))
    })
    .map((component) => {
      const start = declared.find((name) => component.has(name))!
      return shortestCycle(start, component, byName)
    })
    .sort((a, b) => declared.indexOf(a[0]!) - declared.indexOf(b[0]!))
}

const shortestCycle = (
  start: string,
  component: ReadonlySet<string>,
  byName: ReadonlyMap<string, GraphNode>,
): ReadonlyArray<string> => {
  const previous = new Map<string, string>()
  const queue = [start]
  for (let head = 0; head < queue.length; head++) {
    const current = queue[head]!
    for (const dependency of knownDeps(byName.get(current)!, byName)) {
      if (!component.has(dependency)) continue
      if (dependency === start) {
        const path = [start]
        for (let at: string | undefined = current; at !== undefined && at !== start; at = previous.get(at)) {
          path.push(at)
        }
        // Collected backwards from the closing edge; the head stays at `start`.
        return [start, ...path.slice(1).reverse(), start]
      }
      if (!previous.has(dependency)) {
        previous.set(dependency, current)
        queue.push(dependency)
      }
    }
  }
  return [start, start]
}

/** Tier of a task = 1 + the deepest tier among its dependencies; assumes an acyclic graph. */
const tiersOf = (byName: ReadonlyMap<string, GraphNode>): Tiers => {
  const depth = new Map<string, number>()
  const depthOf = (name: string): number => {
    const known = depth.get(name)
    if (known !== undefined) return known
    let deepest = -1
    for (const dependency of knownDeps(byName.get(name)!, byName))
      deepest = Math.max(deepest, depthOf(dependency))
    depth.set(name, deepest + 1)
    return deepest + 1
  }
  const tiers: Array<Array<string>> = []
  for (const name of byName.keys()) {
    const tier = depthOf(name)
    while (tiers.length <= tier) tiers.push([])
    tiers[tier]!.push(name)
  }
  return tiers
}

/** Mermaid ids cannot hold every character a task name can; such names get a generated id and a label. */
const mermaidIds = (nodes: ReadonlyArray<GraphNode>): Map<string, string> => {
  const ids = new Map<string, string>()
  const names = new Set<string>()
  for (const node of nodes) {
    names.add(node.name)
    for (const dependency of node.dependsOn) names.add(dependency)
  }
  let generated = 0
  for (const name of names) ids.set(name, /^[A-Za-z_][A-Za-z0-9_]*$/.test(name) ? name : `task${generated++}`)
  return ids
}

export const toMermaid = (nodes: ReadonlyArray<GraphNode>): string => {
  const ids = mermaidIds(nodes)
  const lines = ["graph TD"]
  for (const [name, id] of ids) {
    if (id !== name) lines.push(`  ${id}["${name.replaceAll('"', "#quot;")}"]`)
  }
  const connected = new Set<string>()
  for (const node of nodes) {
    for (const dependency of node.dependsOn) {
      connected.add(node.name)
      connected.add(dependency)
      lines.push(`  ${ids.get(dependency)} --> ${ids.get(node.name)}`)
    }
  }
  const listed = new Set<string>()
  for (const node of nodes) {
    // Labelled nodes were already declared above.
    if (connected.has(node.name) || listed.has(node.name) || ids.get(node.name) !== node.name) continue
    listed.add(node.name)
    lines.push(`  ${ids.get(node.name)}`)
  }
  return lines.join("\n")
}
