/**
 * The shape of a record's value as the sinks see it, checked in one pass before any sink is
 * given the record: how deep objects and arrays nest, and field names that MongoDB refuses
 * (a leading `$`, a NUL character). The walk keeps its own stack, so a value nested
 * thousands of levels deep is reported, not a stack overflow.
 */
import type { Json } from "./Record.js"

export interface ShapeProblem {
  readonly rule: "depth" | "field_name"
  readonly message: string
}

const shown = (name: string): string => JSON.stringify(name.length > 40 ? `${name.slice(0, 40)}…` : name)

/** The first problem found, or undefined; the top-level object is depth 1. */
export const shapeProblem = (value: Json, maxDepth: number): ShapeProblem | undefined => {
  const values: Json[] = [value]
  const depths: number[] = [1]
  while (values.length > 0) {
    const current = values.pop()!
    const depth = depths.pop()!
    if (typeof current !== "object" || current === null) continue
    if (depth > maxDepth) {
      return {
        rule: "depth",
        message: `objects and arrays are nested deeper than ${maxDepth} levels (PIPELINE__MAX_NESTING_DEPTH)`,
      }
    }
    if (Array.isArray(current)) {
      for (const item of current) {
        if (typeof item === "object" && item !== null) {
          values.push(item)
          depths.push(depth + 1)
        }
      }
      continue
    }
    for (const name in current) {
      if (name.charCodeAt(0) === 36 /* $ */) {
        return {
          rule: "field_name",
          message: `field name ${shown(name)} starts with "$", which MongoDB does not store`,
        }
      }
      if (name.includes("\u0000")) {
        return {
          rule: "field_name",
          message: `field name ${shown(name)} contains a NUL character, which MongoDB does not store`,
        }
      }
      const item = current[name]!
      if (typeof item === "object" && item !== null) {
        values.push(item)
        depths.push(depth + 1)
      }
    }
  }
  return undefined
}
