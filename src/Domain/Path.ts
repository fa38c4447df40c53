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

export const getPath = (root: JsonObject, path: Path): Json | undefined => {
  let current: JsonObject = root
  const last = path.length - 1
  for (let i = 0; i < last; i++) {
    const child: Json | undefined = Object.hasOwn(current, path[i]!) ? current[path[i]!] : undefined
    if (!isJsonObject(child)) return undefined
    current = child
  }
  const key = path[last]!
  return Object.hasOwn(current, key) ? current[key] : undefined
}

/**
 * Sets a value, creating missing objects along the way. Returns false (and changes nothing)
 * when something other than an object sits where the path needs one: overwriting it would
 * lose data without a word.
 */
export const setPath = (root: JsonObject, path: Path, value: Json): boolean => {
  const parent = ownedParent(root, path, true)
  if (parent === undefined) return false
  parent[path[path.length - 1]!] = value
  return true
}

/**
 * Removes a field; true when it was there. With `pruneEmpty`, objects that the removal leaves
 * empty are removed too (a move out of `customer.*` should not leave `customer: {}` behind).
 */
export const deletePath = (root: JsonObject, path: Path, pruneEmpty = false): boolean => {
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
