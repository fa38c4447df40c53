/**
 * How the records of parallel branches merge where a task reads several upstream tasks. Every
 * branch passes on every record of the batch, in batch order, so the versions of one record
 * stand at the same index. The merged record is the first upstream's version with, from each
 * other branch, the fields that branch's own tasks write (set, or removed where that version
 * has none); the definition's checks (Config/PipelineChecks.ts, mergeProblems) make sure no
 * two parallel branches write the same field, so the order of the branches does not matter.
 * Its status is the worst of its versions (invalid, then duplicate, then filtered, then
 * valid), with every reason and warning of every version kept once.
 */
import { deletePath, getPath, type Path, parsePath, setPath } from "../Domain/Path.js"
import type { JsonObject, PipelineRecord, Reason, RecordStatus } from "../Domain/Record.js"
import { everyField } from "../Tasks/Library.js"

type Records = ReadonlyArray<PipelineRecord>

/** An upstream task after the first, and the fields written on its branch only. */
export interface Branch {
  readonly upstream: string
  readonly writes: ReadonlyArray<string>
}

const rank: Readonly<Record<RecordStatus, number>> = { valid: 0, filtered: 1, duplicate: 2, invalid: 3 }

export const worstStatus = (a: RecordStatus, b: RecordStatus): RecordStatus => (rank[b] > rank[a] ? b : a)

const reasonKey = (r: Reason) => `${r.task}\u0000${r.field ?? ""}\u0000${r.rule}\u0000${r.message}`

/** `a` followed by what `b` adds; the same array when `b` adds nothing. */
export const unionReasons = (a: ReadonlyArray<Reason>, b: ReadonlyArray<Reason>): Reason[] => {
  if (b.length === 0 || a === b) return a as Reason[]
  const seen = new Set(a.map(reasonKey))
  const added = b.filter((r) => !seen.has(reasonKey(r)))
  return added.length === 0 ? (a as Reason[]) : [...a, ...added]
}

interface CompiledBranch {
  readonly upstream: string
  /** Undefined: the branch may write every field, so its version's value is taken whole. */
  readonly paths: ReadonlyArray<Path> | undefined
}

const copyFields = (into: JsonObject, from: JsonObject, paths: ReadonlyArray<Path>): void => {
  for (const path of paths) {
    const value = getPath(from, path)
    if (value === undefined) deletePath(into, path, true)
    else setPath(into, path, value)
  }
}

export const mergeBranches = (first: string, branches: ReadonlyArray<Branch>) => {
  const compiled: ReadonlyArray<CompiledBranch> = branches.map((b) => ({
    upstream: b.upstream,
    paths: b.writes.includes(everyField) ? undefined : [...new Set(b.writes)].map(parsePath),
  }))
  return (outputs: (task: string) => Records): Records => {
    const base = outputs(first)
    const others = compiled.map((b) => ({ branch: b, records: outputs(b.upstream) }))
    return base.map((record, index) => {
      let merged: PipelineRecord = record
      let value: JsonObject | undefined
      for (const { branch, records } of others) {
        const other = records[index]
        if (other === undefined || other.offset !== record.offset)
          throw new Error(
            `branch "${branch.upstream}" does not carry the batch's records in order at ${index}`,
          )
        if (other === record) continue
        if (other.value !== record.value && (branch.paths === undefined || branch.paths.length > 0)) {
          if (branch.paths === undefined) value = { ...other.value }
          else {
            value ??= { ...record.value }
            copyFields(value, other.value, branch.paths)
          }
        }
        const status = worstStatus(merged.status, other.status)
        const reasons = unionReasons(merged.reasons, other.reasons)
        const warnings = unionReasons(merged.warnings, other.warnings)
        const key = merged.key ?? other.key
        if (
          status !== merged.status ||
          reasons !== merged.reasons ||
          warnings !== merged.warnings ||
          key !== merged.key
        )
          merged = { ...merged, status, reasons, warnings, ...(key === undefined ? {} : { key }) }
      }
      return value === undefined ? merged : { ...merged, value }
    })
  }
}
