/**
 * Latency runs alone, at a fixed rate, for comparing settings or builds side by side:
 *   npx tsx bench/investigate/latency.ts RATE REPS [NAME[@MAIN]=K=V,K=V ...]
 * Each variant is a set of extra service settings ("base" for none), run by the working tree's
 * build or by MAIN (a main.js built elsewhere, e.g. from another commit); the variants run in turn,
 * REPS rounds, each a latency run of --latency-seconds (20) after --latency-warmup (10), as
 * step 6 of the end-to-end benchmark does. Prints p50 / p95 / p99 / max per run (produce ->
 * MongoDB acknowledged, and in brackets produce -> sink topic appended) and the median of the
 * first per variant.
 */
import { join } from "node:path"
import { latencyRun } from "../e2e/Latency.js"
import { parseOptions } from "../e2e/Options.js"
import { withRun } from "../e2e/Run.js"
import { buildService } from "../e2e/Service.js"

const [rateText, repsText, ...specs] = process.argv.slice(2)
const rate = Number(rateText)
const reps = Number(repsText)
if (!(rate > 0) || !(reps > 0)) {
  process.stderr.write("usage: npx tsx bench/investigate/latency.ts RATE REPS [NAME[@MAIN]=K=V,K=V ...]\n")
  process.exit(2)
}
const variants = (specs.length === 0 ? ["base"] : specs).map((spec) => {
  const at = spec.indexOf("=")
  const [name, main] = (at < 0 ? spec : spec.slice(0, at)).split("@") as [string, string | undefined]
  const env: Record<string, string> = {}
  if (at >= 0)
    for (const pair of spec.slice(at + 1).split(",")) {
      const eq = pair.indexOf("=")
      env[pair.slice(0, eq)] = pair.slice(eq + 1)
    }
  return { name, main, env }
})
const options = parseOptions(["--latency-seconds", "20", "--latency-warmup", "10"])
if (options === "help") process.exit(0)

await withRun(options, async (run) => {
  const main = buildService(join(run.dir, "service"))
  const results = new Map<string, number[][]>()
  for (let rep = 1; rep <= reps; rep++)
    for (const v of variants) {
      const r = await latencyRun(run, v.main ?? main, rate, rep, v.env, `${v.name}${rep}`)
      const m = r.mongoAck
      const k = r.sinkAppend
      const row = [m.p50, m.p95, m.p99, m.max]
      results.set(v.name, [...(results.get(v.name) ?? []), row])
      process.stdout.write(
        `${v.name} ${rep}: achieved ${r.achievedRate.toFixed(0)}/s; p50/p95/p99/max ${row.join(" / ")} ms (sink topic ${[k.p50, k.p95, k.p99, k.max].join(" / ")}); pipeline ${(r.cores.pipeline ?? 0).toFixed(2)} cores\n`,
      )
    }
  for (const [name, rows] of results) {
    const median = (i: number) => rows.map((r) => r[i]!).sort((a, b) => a - b)[Math.floor(rows.length / 2)]
    process.stdout.write(`${name} median: ${[0, 1, 2, 3].map(median).join(" / ")} ms\n`)
  }
})
