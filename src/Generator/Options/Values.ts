/**
 * The option values as strings, from a flag or from the environment, and the checks each goes
 * through. A problem names the flag or the variable the user actually set. The checks collect
 * every problem instead of stopping at the first, so that one run reports them all.
 */
export const VALUE_OPTIONS = [
  "rate",
  "total",
  "pattern",
  "invalid-ratio",
  "duplicate-ratio",
  "malformed-ratio",
  "oversized-ratio",
  "oversized-bytes",
  "output",
  "bootstrap-servers",
  "topic",
  "partitions-key",
  "file",
  "seed",
  "batch-size",
  "format",
  "rows",
  "delete-ratio",
  "tombstone-ratio",
  "schemas",
] as const
export type ValueOption = (typeof VALUE_OPTIONS)[number]

/** The values given on the command line, by option. */
export type Values = Readonly<Partial<Record<ValueOption, string>>>

export interface UsageProblem {
  /** The flag (`--rate`) or the environment variable (`TEST_DATA__RATE`) at fault. */
  readonly option: string
  readonly message: string
}

/** A raw value and where it came from, so problems name the flag or the variable the user set. */
export interface Source {
  readonly name: string
  readonly raw: string
}

/** Every problem found so far; a check that finds one returns its fallback, so the checks go on. */
export class Problems {
  readonly found: Array<UsageProblem> = []

  add(option: string, message: string): void {
    this.found.push({ option, message })
  }

  private bad(s: Source, expected: string): void {
    this.add(s.name, `${s.name}: '${s.raw}' is not ${expected}`)
  }

  numberIn(s: Source, min: number, max: number, integer: boolean, fallback: number): number {
    const n = s.raw.trim() === "" ? Number.NaN : Number(s.raw)
    if (!Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < min || n > max) {
      this.bad(s, `${integer ? "an integer" : "a number"} in [${min}, ${max}]`)
      return fallback
    }
    return n
  }

  oneOf<const A extends string, F>(s: Source, values: ReadonlyArray<A>, fallback: F): A | F {
    const found = values.find((v) => v === s.raw.trim().toLowerCase())
    if (found === undefined) {
      this.bad(s, `one of ${values.join(", ")}`)
      return fallback
    }
    return found
  }
}
