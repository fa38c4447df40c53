/**
 * What decides a record's fate besides its bytes: the pipeline definition and the settings that
 * bound what the sinks take. A dead letter a replay wrote carries the fingerprint of these; a
 * later replay with the same fingerprint passes it over, since it would end the same way again.
 */
import { createHash } from "node:crypto"
import type { AppSettings } from "../Config/AppConfig.js"
import type { PipelineSpec } from "../Config/PipelineSpec.js"

export const fingerprintOf = (spec: PipelineSpec, settings: AppSettings): string =>
  createHash("sha256")
    .update(
      JSON.stringify({
        spec,
        maxNestingDepth: settings.pipeline.maxNestingDepth,
        maxKeyBytes: settings.pipeline.maxKeyBytes,
        maxMessageBytes: settings.kafka.maxMessageBytes,
      }),
    )
    .digest("hex")
    .slice(0, 16)
