/**
 * One batch as the DAG sees it: where it came from (with its correlation id) and its records.
 * Messages that are not records (malformed) never enter the DAG; the processor sends them to
 * the dead-letter topic straight from the parse.
 */
import type { PipelineRecord } from "../Domain/Record.js"
import type { BatchOrigin } from "../Kafka/Messages.js"

export interface Batch {
  readonly origin: BatchOrigin
  readonly records: ReadonlyArray<PipelineRecord>
}
