/**
 * Dot paths into a record's JSON value ("customer.email"), parsed once when a task is built so
 * the per-record work is a walk over a short array. Paths go through objects only: an array
 * where a path expects an object means the field is not there.
 *
 * Reads only see own properties, so a record can never hand back something from
 * Object.prototype ("toString", "constructor"). Writes copy every nested object they pass
 * through: a task that owns a fresh copy of the root may write anywhere without touching the
 * objects of the record it came from.
 */
import { Schema } from "effect"
import { isJsonObject, type Json, type JsonObject } from "./Record.js"

export type Path = ReadonlyArray<string>

// Writing these names would change an object's prototype rather than add a field.
const forbiddenSegments: ReadonlySet<string> = new Set(["__proto__", "prototype", "constructor"])

/** Why a path string is unusable, or undefined when it is fine. */
export const pathProblem = (path: string): string | undefined => {
  if (path.length === 0) return "empty path"
  const segments = path.split(".")
  if (segments.some((segment) => segment.length === 0)) return `empty segment in path "${path}"`
  const forbidden = segments.find((segment) => forbiddenSegments.has(segment))
  if (forbidden !== undefined) return `path segment "${forbidden}" is not allowed`
  return undefined
}

/** A field path in a pipeline definition: checked when the definition is decoded. */
export const PathString = Schema.String.check(Schema.makeFilter((path: string) => pathProblem(path)))

export const parsePath = (path: string): Path => path.split(".")

/**
 * A field of a JSON object, own properties only. Cheaper than Object.hasOwn on every read:
 * what a plain object inherits is Object.prototype's, all functions but `__proto__`, and a
 * JSON value is never a function.
 */
const field = (object: JsonObject, key: string): Json | undefined => {
  const value: unknown = object[key]
  return typeof value === "function" || key === "__proto__" ? undefined : (value as Json | undefined)
}

export const getPath = (root: JsonObject, path: Path): Json | undefined => {
  // Top-level fields are most of the work after the mapping; skip the walk.
  if (path.length === 1) return field(root, path[0]!)
  let current: JsonObject = root
  const last = path.length - 1
  for (let i = 0; i < last; i++) {
    const child = field(current, path[i]!)
    if (!isJsonObject(child)) return undefined
    current = child
  }
  return field(current, path[last]!)
}

/**
 * Sets a value, creating missing objects along the way. Returns false (and changes nothing)
 * when something other than an object sits where the path needs one: overwriting it would
 * lose data without a word.
 */
export const setPath = (root: JsonObject, path: Path, value: Json): boolean => {
  if (path.length === 1) {
    const key = path[0]!
    if (key === "__proto__") return false
    root[key] = value
    return true
  }
  const parent = ownedParent(root, path, true)
  const key = path[path.length - 1]!
  if (parent === undefined || key === "__proto__") return false
  parent[key] = value
  return true
}

/**
 * Removes a field; true when it was there. With `pruneEmpty`, objects that the removal leaves
 * empty are removed too (a move out of `customer.*` should not leave `customer: {}` behind).
 */
export const deletePath = (root: JsonObject, path: Path, pruneEmpty = false): boolean => {
  // Assigning a copy to `__proto__` would replace a prototype; PathString never lets it through.
  if (path.includes("__proto__")) return false
  if (path.length === 1) {
    // Fast path for the common case: no walk, no copies.
    const key = path[0]!
    if (!Object.hasOwn(root, key)) return false
    delete root[key]
    return true
  }
  const chain: Array<JsonObject> = [root]
  for (let i = 0; i < path.length - 1; i++) {
    const parent = chain[i]!
    const segment = path[i]!
    const child = Object.hasOwn(parent, segment) ? parent[segment] : undefined
    if (!isJsonObject(child)) return false
    chain.push(child)
  }
  const last = path[path.length - 1]!
  if (!Object.hasOwn(chain[chain.length - 1]!, last)) return false
  // Only now copy: a path that is not there costs no allocation.
  for (let i = 1; i < chain.length; i++) {
    const copy = { ...chain[i]! }
    chain[i - 1]![path[i - 1]!] = copy
    chain[i] = copy
  }
  delete chain[chain.length - 1]![last]
  if (pruneEmpty) {
    for (let i = chain.length - 1; i > 0 && isEmptyObject(chain[i]!); i--) delete chain[i - 1]![path[i - 1]!]
  }
  return true
}

const isEmptyObject = (object: JsonObject): boolean => {
  for (const _ in object) return false
  return true
}

/** Walks to the object holding the last segment, replacing each nested object by a copy. */
const ownedParent = (root: JsonObject, path: Path, create: boolean): JsonObject | undefined => {
  let parent = root
  for (let i = 0; i < path.length - 1; i++) {
    const segment = path[i]!
    if (segment === "__proto__") return undefined
    const child = Object.hasOwn(parent, segment) ? parent[segment] : undefined
    let next: JsonObject
    if (isJsonObject(child)) next = { ...child }
    else if (child === undefined && create) next = {}
    else return undefined
    parent[segment] = next
    parent = next
  }
  return parent
}
