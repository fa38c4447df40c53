/**
 * The command line as flags and raw values, and the checks every value goes through. Each
 * problem is a UsageError naming the flag or environment variable the user actually set.
 */
import { Data, Runtime } from "effect"

export class UsageError extends Data.TaggedError("UsageError")<{
  readonly option: string
  readonly message: string
}> {
  override readonly [Runtime.errorExitCode] = 2
  // The CLI prints the usage text itself.
  override readonly [Runtime.errorReported] = false
}

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
] as const
export type ValueOption = (typeof VALUE_OPTIONS)[number]

const isValueOption = (name: string): name is ValueOption =>
  (VALUE_OPTIONS as ReadonlyArray<string>).includes(name)

export type Flags = { help: boolean; values: Partial<Record<ValueOption, string>> }

export const tokenize = (argv: ReadonlyArray<string>): Flags | UsageError => {
  const flags: Flags = { help: false, values: {} }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? ""
    if (arg === "--help" || arg === "-h") {
      flags.help = true
      continue
    }
    if (!arg.startsWith("--")) return new UsageError({ option: arg, message: `unexpected argument '${arg}'` })
    const eq = arg.indexOf("=")
    const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq)
    if (!isValueOption(name))
      return new UsageError({ option: `--${name}`, message: `unknown option --${name}` })
    let value = eq === -1 ? undefined : arg.slice(eq + 1)
    if (value === undefined) {
      const next = argv[i + 1]
      if (next === undefined || next.startsWith("--"))
        return new UsageError({ option: `--${name}`, message: `--${name} needs a value` })
      value = next
      i++
    }
    flags.values[name] = value
  }
  return flags
}

/** A raw value and where it came from, so errors name the flag or the variable the user set. */
export interface Source {
  readonly name: string
  readonly raw: string
}

const bad = (s: Source, expected: string) =>
  new UsageError({ option: s.name, message: `${s.name}: '${s.raw}' is not ${expected}` })

export const numberIn = (s: Source, min: number, max: number, integer: boolean): number | UsageError => {
  const n = s.raw.trim() === "" ? Number.NaN : Number(s.raw)
  const kind = integer ? "an integer" : "a number"
  if (!Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < min || n > max)
    return bad(s, `${kind} in [${min}, ${max}]`)
  return n
}

export const oneOf = <A extends string>(s: Source, values: ReadonlyArray<A>): A | UsageError => {
  const found = values.find((v) => v === s.raw.trim().toLowerCase())
  return found ?? bad(s, `one of ${values.join(", ")}`)
}
