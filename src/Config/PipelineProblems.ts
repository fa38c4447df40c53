/**
 * Schema issues rewritten as the problem list of a pipeline definition: one line per problem,
 * its path written the way the file is read (`tasks[2].settings.rules[0].pattern`) and the
 * offending value quoted. A union that did not match (a task of unknown `type`, a quality rule
 * of unknown `rule`) is reported as the unknown name, not as the list of every member schema.
 */
import { SchemaIssue } from "effect"
import { isJsonObject } from "../Domain/Record.js"
import { preview, typeName } from "../Tasks/Transform.js"

export interface SpecProblem {
  /** Where in the definition, e.g. `tasks[4].dependsOn`; "" for the definition as a whole. */
  readonly path: string
  readonly message: string
}

export type PathSegment = string | number

/** A union told apart by one field, e.g. tasks by `type`. */
export interface TaggedUnionAt {
  readonly at: (path: ReadonlyArray<PathSegment>) => boolean
  readonly key: string
  readonly label: string
  readonly known: ReadonlyArray<string>
}

export const formatPath = (path: ReadonlyArray<PathSegment>): string => {
  let text = ""
  for (const segment of path) {
    if (typeof segment === "number") text += `[${segment}]`
    else if (/^[A-Za-z_$][\w$]*$/.test(segment)) text += text === "" ? segment : `.${segment}`
    else text += `[${JSON.stringify(segment)}]`
  }
  return text
}

const valueAt = (input: unknown, path: ReadonlyArray<PathSegment>): unknown => {
  let current = input
  for (const segment of path) {
    if (typeof segment === "number" ? !Array.isArray(current) : !isJsonObject(current)) return undefined
    current = Object.hasOwn(current as object, segment)
      ? (current as Record<PathSegment, unknown>)[segment]
      : undefined
  }
  return current
}

const toSegments = (path: ReadonlyArray<unknown> | undefined): Array<PathSegment> =>
  (path ?? []).map((item) => {
    const key = typeof item === "object" && item !== null && "key" in item ? item.key : item
    return typeof key === "number" ? key : String(key)
  })

const formatter = SchemaIssue.makeFormatterStandardSchemaV1()

const unionMiss = (value: unknown, path: Array<PathSegment>, union: TaggedUnionAt): SpecProblem => {
  if (!isJsonObject(value))
    return { path: formatPath(path), message: `expected an object, got ${typeName(value)}` }
  const keyPath = formatPath([...path, union.key])
  if (!Object.hasOwn(value, union.key)) return { path: keyPath, message: "required" }
  return {
    path: keyPath,
    message: `unknown ${union.label} ${preview(value[union.key])} (known: ${union.known.join(", ")})`,
  }
}

/**
 * The problems in a Schema issue. `input` is the value that was decoded, `prefix` where it
 * sits in the whole definition.
 */
export const issueProblems = (
  issue: SchemaIssue.Issue,
  input: unknown,
  unions: ReadonlyArray<TaggedUnionAt>,
  prefix: ReadonlyArray<PathSegment> = [],
): Array<SpecProblem> =>
  formatter(issue).issues.map((item) => {
    const local = toSegments(item.path)
    const path = [...prefix, ...local]
    const value = valueAt(input, local)
    const message = item.message
    if (message === "Missing key") return { path: formatPath(path), message: "required" }
    if (message === "Expected no excess property") return { path: formatPath(path), message: "unknown field" }
    if (message.startsWith("Expected {")) {
      const union = unions.find((candidate) => candidate.at(path))
      if (union !== undefined) return unionMiss(value, path, union)
    }
    if (message.startsWith("Expected ") && value !== undefined) {
      return { path: formatPath(path), message: `${lowerFirst(message)}, got ${preview(value)}` }
    }
    return { path: formatPath(path), message: lowerFirst(message) }
  })

const lowerFirst = (text: string): string =>
  text.startsWith("Expected ") ? `expected ${text.slice(9)}` : text

/** Stable order by path, numbers compared as numbers (tasks[2] before tasks[10]); duplicates dropped. */
export const sortProblems = (problems: ReadonlyArray<SpecProblem>): Array<SpecProblem> => {
  const seen = new Set<string>()
  const unique = problems.filter((problem) => {
    const id = `${problem.path}\u0000${problem.message}`
    if (seen.has(id)) return false
    seen.add(id)
    return true
  })
  const sortKey = (path: string): string => path.replace(/\d+/g, (digits) => digits.padStart(10, "0"))
  return unique
    .map((problem, index) => ({ problem, index, key: sortKey(problem.path) }))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.index - b.index))
    .map(({ problem }) => problem)
}
