/**
 * The shape of a record's value as the sinks see it, checked in one pass before any sink is
 * given the record: how deep objects and arrays nest, field names that MongoDB refuses (a
 * leading `$`, a NUL character), numbers a double cannot hold (JSON text may carry 1e400,
 * which parses to Infinity: BSON would store Infinity, the sink topic's JSON `null`), and text
 * that is not well-formed UTF-16 (JSON text may carry "\ud800", an unpaired surrogate: BSON
 * would store U+FFFD, the sink topic's JSON the escape). The walk keeps its own stack, so a
 * value nested thousands of levels deep is reported, not a stack overflow; it allocates
 * nothing per value, and builds the path of a field only once it has found a problem there.
 */
import type { Json, JsonObject } from "./Record.js"

// ES2024 (Node 20+); the project's lib is ES2023.
declare global {
  interface String {
    isWellFormed(): boolean
  }
}

export interface ShapeProblem {
  /**
   * `field_name` only concerns MongoDB; `depth`, `number` and `text` every sink (the encoders
   * recurse; the two sinks would store different values).
   */
  readonly rule: "depth" | "field_name" | "number" | "text"
  readonly message: string
  /** Where the problem is, as a dotted path with array indexes (`tags[1].name`), for `number` and `text`. */
  readonly field?: string
}

const shown = (name: string): string => JSON.stringify(name.length > 40 ? `${name.slice(0, 40)}…` : name)

const bothSinks = "JSON text holds it, MongoDB and the sink topic would not store the same value"

/** A path segment as shown in a message: long names cut short, JSON-quoted when not plain. */
const segment = (name: string): string => (/^[A-Za-z0-9_$@-]{1,40}$/.test(name) ? name : shown(name))

// A path longer than this is shown by its end.
const maxPathLength = 200

/**
 * The path of `container` in `root` (found again by a walk bounded by its depth), then `child`:
 * only called once a problem is found, so the walk over every record builds no path text.
 */
const pathOf = (root: Json, container: Json, depth: number, child: string | number | undefined): string => {
  const tail = child === undefined ? "" : typeof child === "number" ? `[${child}]` : `.${segment(child)}`
  const values: Json[] = [root]
  const depths: number[] = [1]
  const paths: string[] = [""]
  let found = ""
  while (values.length > 0) {
    const current = values.pop()!
    const at = depths.pop()!
    const path = paths.pop()!
    if (current === container) {
      found = path
      break
    }
    if (at >= depth || typeof current !== "object" || current === null) continue
    if (Array.isArray(current)) {
      for (let i = 0; i < current.length; i++) {
        const item = current[i]!
        if (typeof item === "object" && item !== null) {
          values.push(item)
          depths.push(at + 1)
          paths.push(`${path}[${i}]`)
        }
      }
      continue
    }
    for (const name in current) {
      const item = current[name]!
      if (typeof item === "object" && item !== null) {
        values.push(item)
        depths.push(at + 1)
        paths.push(`${path}.${segment(name)}`)
      }
    }
  }
  const full = `${found}${tail}`
  const path = full.startsWith(".") ? full.slice(1) : full
  return path.length > maxPathLength ? `…${path.slice(path.length - maxPathLength)}` : path
}

const numberProblem = (value: number, field: string): ShapeProblem => ({
  rule: "number",
  field,
  message: `field ${field} is a number that cannot be stored as a double (${
    Number.isNaN(value) ? "it is NaN" : `it overflows to ${value}`
  }); ${bothSinks}`,
})

const textProblem = (field: string): ShapeProblem => ({
  rule: "text",
  field,
  message: `field ${field} is a string that is not well-formed UTF-16 (an unpaired surrogate); JSON text holds it, MongoDB would store U+FFFD in its place while the sink topic keeps the escape`,
})

const nameTextProblem = (name: string, container: string): ShapeProblem => ({
  rule: "text",
  field: container === "" ? segment(name) : `${container}.${segment(name)}`,
  message: `field name ${shown(name)}${container === "" ? "" : ` in ${container}`} is not well-formed UTF-16 (an unpaired surrogate); JSON text holds it, MongoDB would store U+FFFD in its place while the sink topic keeps the escape`,
})

/**
 * The first problem found, or undefined; the top-level object is depth 1. A problem that
 * concerns every sink (depth, number, text) wins over a field name only MongoDB refuses, so
 * that a sink that does not care about field names still hears of the rest.
 */
export const shapeProblem = (value: Json, maxDepth: number): ShapeProblem | undefined => {
  if (typeof value !== "object" || value === null) {
    if (typeof value === "number" && !Number.isFinite(value)) return numberProblem(value, "(the value)")
    if (typeof value === "string" && !value.isWellFormed()) return textProblem("(the value)")
    return undefined
  }
  let fieldName: ShapeProblem | undefined
  const values: Array<JsonObject | Json[]> = [value]
  const depths: number[] = [1]
  while (values.length > 0) {
    const current = values.pop()!
    const depth = depths.pop()!
    if (depth > maxDepth) {
      return {
        rule: "depth",
        message: `objects and arrays are nested deeper than ${maxDepth} levels (PIPELINE__MAX_NESTING_DEPTH)`,
      }
    }
    if (Array.isArray(current)) {
      for (let i = 0; i < current.length; i++) {
        const item = current[i]!
        if (typeof item === "object") {
          if (item !== null) {
            values.push(item)
            depths.push(depth + 1)
          }
        } else if (typeof item === "number") {
          if (!Number.isFinite(item)) return numberProblem(item, pathOf(value, current, depth, i))
        } else if (typeof item === "string" && !item.isWellFormed()) {
          return textProblem(pathOf(value, current, depth, i))
        }
      }
      continue
    }
    for (const name in current) {
      if (!name.isWellFormed()) return nameTextProblem(name, pathOf(value, current, depth, undefined))
      if (fieldName === undefined) {
        if (name.charCodeAt(0) === 36 /* $ */) {
          fieldName = {
            rule: "field_name",
            message: `field name ${shown(name)} starts with "$", which MongoDB does not store`,
          }
        } else if (name.includes("\u0000")) {
          fieldName = {
            rule: "field_name",
            message: `field name ${shown(name)} contains a NUL character, which MongoDB does not store`,
          }
        }
      }
      const item = current[name]!
      if (typeof item === "object") {
        if (item !== null) {
          values.push(item)
          depths.push(depth + 1)
        }
      } else if (typeof item === "number") {
        if (!Number.isFinite(item)) return numberProblem(item, pathOf(value, current, depth, name))
      } else if (typeof item === "string" && !item.isWellFormed()) {
        return textProblem(pathOf(value, current, depth, name))
      }
    }
  }
  return fieldName
}
