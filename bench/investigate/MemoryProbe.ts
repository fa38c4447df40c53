/**
 * Loaded into the pipeline process with `node --import` (see bench/investigate/README.md): once
 * a second, appends what makes up its resident memory to BENCH_MEMORY_FILE as a JSON line (pid,
 * RSS, the V8 heap by space, external memory and array buffers), so that a peak can be
 * explained. The timer is unref'd and the cost is one small synchronous write a second.
 *
 * Node runs this file with its built-in type stripping, so it uses erasable syntax only.
 */
import { appendFileSync } from "node:fs"
import { getHeapSpaceStatistics } from "node:v8"

const file = process.env.BENCH_MEMORY_FILE

const sample = (target: string): void => {
  const m = process.memoryUsage()
  const spaces: Record<string, number> = {}
  for (const s of getHeapSpaceStatistics()) spaces[s.space_name] = s.physical_space_size
  try {
    appendFileSync(
      target,
      `${JSON.stringify({
        pid: process.pid,
        at: Date.now(),
        rss: m.rss,
        heapTotal: m.heapTotal,
        heapUsed: m.heapUsed,
        external: m.external,
        arrayBuffers: m.arrayBuffers,
        spaces,
      })}\n`,
    )
  } catch {
    // A diagnostic never takes the service down.
  }
}

if (file !== undefined && file !== "") setInterval(() => sample(file), 1000).unref()
