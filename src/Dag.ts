/**
 * The DAG engine: tasks, their validated graph, the executor, the retry policy and the
 * context a batch's tasks share. Knows nothing of Kafka, MongoDB or the record model.
 */
export * as Dag from "./Dag/Dag.js"
export * as Executor from "./Dag/Executor.js"
export * as Graph from "./Dag/Graph.js"
export * as PipelineContext from "./Dag/PipelineContext.js"
export * as Retry from "./Dag/Retry.js"
export * as Task from "./Dag/Task.js"
