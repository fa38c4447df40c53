/**
 * The service's own account of a run, read from its /metrics endpoint (Prometheus text):
 * record counters, and the per-task and per-batch duration histograms, which say where the
 * time of a batch goes stage by stage.
 */

export interface Sample {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

const line = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/
const label = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g

export const parsePrometheus = (text: string): Sample[] => {
  const samples: Sample[] = []
  for (const raw of text.split("\n")) {
    if (raw.startsWith("#")) continue
    const m = line.exec(raw)
    if (m === null) continue
    const labels: Record<string, string> = {}
    for (const l of (m[2] ?? "").matchAll(label)) labels[l[1]!] = l[2]!.replace(/\\(.)/g, "$1")
    samples.push({ name: m[1]!, labels, value: Number(m[3]) })
  }
  return samples
}

export const scrape = async (port: number): Promise<Sample[]> => {
  const response = await fetch(`http://127.0.0.1:${port}/metrics`)
  return parsePrometheus(await response.text())
}

const total = (samples: ReadonlyArray<Sample>, name: string, where: Record<string, string> = {}): number =>
  samples
    .filter((s) => s.name === name && Object.entries(where).every(([k, v]) => s.labels[k] === v))
    .reduce((n, s) => n + s.value, 0)

export interface StageTime {
  readonly stage: string
  readonly batches: number
  /** Mean wall time of the stage for one batch, in milliseconds. */
  readonly meanMs: number
  /** Summed over all batches (batches of different partitions overlap), in seconds. */
  readonly totalSeconds: number
}

export interface ServiceAccount {
  readonly consumed: number
  readonly valid: number
  readonly duplicates: number
  readonly deadLettered: number
  readonly writtenMongo: number
  readonly writtenKafka: number
  readonly batches: number
  readonly retries: number
  readonly stages: ReadonlyArray<StageTime>
}

export const account = (samples: ReadonlyArray<Sample>): ServiceAccount => {
  const stage = (stageName: string, metric: string, where: Record<string, string> = {}): StageTime => {
    const count = total(samples, `${metric}_count`, where)
    const sum = total(samples, `${metric}_sum`, where)
    return {
      stage: stageName,
      batches: count,
      meanMs: count === 0 ? 0 : (sum / count) * 1000,
      totalSeconds: sum,
    }
  }
  const tasks = [
    ...new Set(
      samples.filter((s) => s.name === "pipeline_task_duration_seconds_count").map((s) => s.labels.task),
    ),
  ].filter((t): t is string => t !== undefined)
  return {
    consumed: total(samples, "pipeline_records_consumed_total"),
    valid: total(samples, "pipeline_records_valid_total"),
    duplicates: total(samples, "pipeline_records_duplicate_total"),
    deadLettered: total(samples, "pipeline_records_dead_lettered_total"),
    writtenMongo: total(samples, "pipeline_records_written_total", { sink: "mongodb" }),
    writtenKafka: total(samples, "pipeline_records_written_total", { sink: "kafka" }),
    batches: total(samples, "pipeline_batches_total"),
    retries: total(samples, "pipeline_task_retries_total"),
    stages: [
      ...tasks.map((t) => stage(t, "pipeline_task_duration_seconds", { task: t })),
      stage("whole batch", "pipeline_batch_duration_seconds"),
    ],
  }
}
