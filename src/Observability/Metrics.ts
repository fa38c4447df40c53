/**
 * The service's Prometheus metrics. Counters count records and batches; histograms time
 * tasks and batches; gauges say what is happening now (batches in flight, lag, stalls).
 */
import { Metric } from "effect"

const seconds = Metric.exponentialBoundaries({ start: 0.001, factor: 2, count: 16 })

export const recordsConsumed = Metric.counter("pipeline_records_consumed_total", {
  description: "Kafka messages read from the source topic",
})
export const recordsValid = Metric.counter("pipeline_records_valid_total", {
  description: "Records that passed every task and were handed to the sinks",
})
export const recordsInvalid = Metric.counter("pipeline_records_invalid_total", {
  description: "Records turned away, by the task and rule of their first reason",
})
export const recordsDuplicate = Metric.counter("pipeline_records_duplicate_total", {
  description: "Records removed as duplicates",
})
export const recordsFiltered = Metric.counter("pipeline_records_filtered_total", {
  description: "Records no sink's branch carries: a filter stopped them on every branch that leads to a sink",
})
export const tombstones = Metric.counter("pipeline_tombstones_total", {
  description:
    "Messages whose value is null, by what MONGODB__ON_TOMBSTONE did with them: applied (deleted from MongoDB, passed on to the sink topic; Debezium deletes too) or ignored",
})
export const recordsDeadLettered = Metric.counter("pipeline_records_dead_lettered_total", {
  description: "Messages written to the dead-letter topic, by stage",
})
export const recordsWritten = Metric.counter("pipeline_records_written_total", {
  description: "Records acknowledged by a sink, by sink",
})
export const staleWrites = Metric.counter("pipeline_mongodb_stale_writes_total", {
  description:
    "Records a MongoDB sink left alone because the stored document was written from a later offset of the same partition, by sink",
})
export const skippedInserts = Metric.counter("pipeline_mongodb_skipped_inserts_total", {
  description:
    "Records a MongoDB sink did not write because a document of their key is stored (MONGODB__WRITE_MODEL=insert), by sink",
})
export const mongoWrites = Metric.counter("pipeline_mongodb_writes_total", {
  description:
    "Records a MongoDB sink wrote (inserted, replaced or merged; not the stale or skipped ones), by sink and write model",
})
export const mongoDeletes = Metric.counter("pipeline_mongodb_deletes_total", {
  description:
    "Documents a MongoDB sink deleted for tombstones and change events' deletes (a key with no document, or a newer one, deletes nothing), by sink",
})
export const taskRecords = Metric.counter("pipeline_task_records_total", {
  description:
    "What each task counted over its batches, by task and counter (records in, invalidated, skipped, and the task's own: mapped, converted, duplicates, ...)",
})
export const taskLevel = Metric.gauge("pipeline_task_level", {
  description:
    "A stateful task's level after its last batch, by task and level (windowKeys: keys in the duplicate window)",
})
export const taskRetries = Metric.counter("pipeline_task_retries_total", {
  description: "Attempts beyond the first, by task",
})
export const taskFailures = Metric.counter("pipeline_task_failures_total", {
  description: "Tasks that failed after their retries, by task",
})
export const batchesProcessed = Metric.counter("pipeline_batches_total", {
  description: "Batches fully written and committed",
})
export const taskDuration = Metric.histogram("pipeline_task_duration_seconds", {
  description: "Time of one task over one batch, retries included",
  boundaries: seconds,
})
export const batchDuration = Metric.histogram("pipeline_batch_duration_seconds", {
  description: "Time from taking a batch to having it written everywhere",
  boundaries: seconds,
})
export const batchesInFlight = Metric.gauge("pipeline_batches_in_flight", {
  description: "Batches taken from Kafka and not yet written",
})
export const stalled = Metric.gauge("pipeline_stalled", {
  description: "1 while any partition is stalled (see pipeline_partition_stalled)",
})
export const consumerLag = Metric.gauge("pipeline_consumer_lag", {
  description: "High watermark minus committed offset, by partition",
})
export const lastCommit = Metric.gauge("pipeline_last_commit_timestamp_seconds", {
  description: "Unix time of the last offset commit",
})
export const reloads = Metric.counter("pipeline_reloads_total", {
  description: "Pipeline definition reloads, by outcome (applied, rejected, unchanged)",
})
export const partitionStalled = Metric.gauge("pipeline_partition_stalled", {
  description:
    "1 while the partition's batch keeps failing to be written (retried, nothing committed), by partition",
})
export const oldestBatchAge = Metric.gauge("pipeline_partition_oldest_batch_age_seconds", {
  description:
    "Age of the partition's oldest batch taken from Kafka and not yet written and committed, by partition",
})
export const kafkaClientEvents = Metric.counter("pipeline_kafka_client_events_total", {
  description:
    "The Kafka client's own log lines, by the level they were logged at and their kind (retriable, handled, connection, membership, restart, warning, error)",
})
