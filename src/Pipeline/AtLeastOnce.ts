/**
 * Delivery at least once (the default): the sinks, each in its turn on its lane, beside the dead
 * letters known before writing and the keys of the durable duplicate windows; then the dead letters of the records a sink turned away while
 * writing. The source commits the batch's offset once this is done, so a crash before that reads
 * the batch again: MongoDB ends the same, the topics may carry its messages twice.
 */
import { Effect } from "effect"
import type { Delivery, DeliveryParts } from "./Delivery.js"
import { sinkStages } from "./Lanes.js"
import type { SinkRun } from "./Writes.js"

export const atLeastOnce = (parts: DeliveryParts): Delivery => ({
  unwritten: (batch) => Effect.succeed(batch.messages),

  deliver: (admitted) =>
    Effect.gen(function* () {
      const { admission, classifyWith, scope } = admitted
      const early = classifyWith(admission.refused)
      const runs: Array<SinkRun> = new Array(parts.plan.sinks.length)
      yield* Effect.all(
        [
          parts.sendDeadLetters([...admitted.malformed, ...early.deadLetters], scope),
          parts.saveWindows(admitted),
          ...sinkStages.map((stage) => parts.writeKindInTurn(admitted, stage, runs)),
        ],
        { concurrency: "unbounded", discard: true },
      )
      const written = parts.writtenBy(runs)
      const rejectedWhileWriting = runs.flatMap((r) => r.rejected)
      if (rejectedWhileWriting.length === 0) return { ...early, written, runs }
      const final = classifyWith([...admission.refused, ...rejectedWhileWriting])
      const late = new Set(rejectedWhileWriting.map((r) => r.record.offset))
      yield* parts.sendDeadLetters(
        final.deadLetters.filter((d) => late.has(d.message.offset)),
        scope,
      )
      return { ...final, written, runs }
    }),

  // Its turns on the lanes are passed on when the batch ends (Processor.handle).
  deadLettersOnly: (_batch, scope, deadLetters) => parts.sendDeadLetters(deadLetters, scope),
})
