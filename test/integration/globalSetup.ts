/**
 * Brings the local stack (Kafka + FerretDB) up for the integration tests when it is not
 * already reachable, and stops afterwards only what it started.
 */
import { down, up } from "../../scripts/stack.js"

export default async function setup() {
  const results = await up()
  const started = results.filter((r) => r.started).map((r) => r.service)
  return async () => {
    if (started.length > 0) await down(started)
  }
}
