/**
 * Whether the service is ready, as the pipeline judges it: the reasons it is not, empty when
 * it is. The HTTP endpoint only reports them; the pipeline provides the check (Pipeline/Service.ts).
 */
import { Context, type Effect } from "effect"

export interface ReadinessShape {
  /** Why the service is not ready now; scrubbed of secrets, empty when ready. */
  readonly reasons: Effect.Effect<ReadonlyArray<string>>
}

export class Readiness extends Context.Service<Readiness, ReadinessShape>()("pipeline/Readiness") {}
