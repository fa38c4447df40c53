/**
 * How a baseline child talks to the benchmark: its settings arrive as JSON in BENCH_CONFIG,
 * its progress leaves as `@bench {"event": ...}` lines on stdout.
 */

export const PREFIX = "@bench "

export const emit = (event: string, data: Readonly<Record<string, unknown>> = {}): void => {
  process.stdout.write(`${PREFIX}${JSON.stringify({ event, ...data })}\n`)
}

export const childConfig = <A>(): A => {
  const text = process.env.BENCH_CONFIG
  if (text === undefined) throw new Error("BENCH_CONFIG is not set: this file is run by bench/e2e.ts")
  return JSON.parse(text) as A
}
