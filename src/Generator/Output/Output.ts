/**
 * Where generated messages go: stdout, a JSON-lines file, or a Kafka topic (through the
 * service's Kafka client and producer). One service with one layer per target; the layer owns
 * the resource (file handle, producer) so closing its scope flushes and closes it, on success,
 * failure and Ctrl-C alike.
 */
import { Context, type Effect, Layer } from "effect"
import type { OutputTarget } from "../Options/Target.js"
import type { GeneratedRecord } from "../Records.js"
import type { OutputError } from "./Errors.js"
import { kafkaLayer, kafkaOutput } from "./Kafka.js"
import { consoleOutput, fileOutput } from "./Lines.js"

export * from "./Errors.js"

export class Output extends Context.Service<
  Output,
  {
    /**
     * Delivers the batch in order and returns the messages the target refused one by one
     * (an oversized message the broker rejects); any other failure fails the effect.
     */
    readonly write: (
      records: ReadonlyArray<GeneratedRecord>,
    ) => Effect.Effect<ReadonlyArray<GeneratedRecord>, OutputError>
  }
>()("generator/Output") {
  static readonly layer = (target: OutputTarget): Layer.Layer<Output, OutputError> => {
    switch (target._tag) {
      case "console":
        return Layer.effect(Output, consoleOutput)
      case "file":
        return Layer.effect(Output, fileOutput(target.path))
      case "kafka":
        return Layer.effect(Output, kafkaOutput(target)).pipe(Layer.provide(kafkaLayer(target)))
    }
  }
}
