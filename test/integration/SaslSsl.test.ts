/**
 * The Confluent Cloud path for real: the service with KAFKA__API_KEY/KAFKA__API_SECRET talks
 * SASL_SSL with PLAIN to the stack broker's second listener, whose certificate is signed by the
 * stack's throw-away CA (trusted here through NODE_EXTRA_CA_CERTS, as a user would trust a
 * private CA). The test data goes in, and the results are read, over the plain listener.
 */
import { afterAll, assert, describe, it } from "@effect/vitest"
import { kafkaSasl } from "../../scripts/stack.js"
import { defaultRecordOptions, generate } from "../../src/Generator/Records.js"
import {
  createTopic,
  dropDatabase,
  freshNames,
  groupCaughtUp,
  mongoIds,
  produce,
  readTopic,
  serviceEnv,
  startService,
  summaryOf,
  waitFor,
} from "./support/Service.js"

const databases: string[] = []
afterAll(async () => {
  for (const db of databases) await dropDatabase(db).catch(() => undefined)
})

const saslEnv = (names: ReturnType<typeof freshNames>, secret: string) =>
  serviceEnv(names, {
    KAFKA__BOOTSTRAP_SERVERS: kafkaSasl.brokers.join(","),
    KAFKA__API_KEY: kafkaSasl.username,
    KAFKA__API_SECRET: secret,
    NODE_EXTRA_CA_CERTS: kafkaSasl.caFile,
  })

describe("SASL_SSL with PLAIN (the Confluent Cloud path)", () => {
  it("carries records end to end with an API key and secret over TLS", async () => {
    const names = freshNames("sasl")
    databases.push(names.database)
    await createTopic(names.source, 3)
    const records = [...generate({ ...defaultRecordOptions, seed: 94 }, 0, 600)]
    await produce(names.source, records)

    const service = startService(saslEnv(names, kafkaSasl.password()))
    try {
      await waitFor(
        "the group to commit every offset",
        () => groupCaughtUp(names.group, names.source),
        90_000,
        () => service.output(),
      )
      assert.strictEqual(await service.stop("SIGTERM"), 0, service.output())
    } finally {
      await service.stop("SIGKILL")
    }

    const valid = [...new Set(records.filter((r) => r.kind === "valid").map((r) => r.key!))].sort()
    assert.deepStrictEqual([...(await mongoIds(names.database))].sort(), valid)
    const sinkKeys = new Set((await readTopic(names.sink)).map((m) => m.key))
    assert.deepStrictEqual([...sinkKeys].sort(), valid)
    const invalid = records.filter((r) => r.kind === "invalid").map((r) => String(r.index))
    const dlq = (await readTopic(names.dlq)).map((m) => m.headers["x-index"]!)
    assert.deepStrictEqual(dlq.sort(), invalid.sort())
    assert.strictEqual(summaryOf(service.output())?.consumed, records.length)
    assert.notInclude(service.output(), kafkaSasl.password())
  })

  it("stops at start with a clear message and a non-zero exit code on a wrong secret, never printing it", async () => {
    const names = freshNames("sasl-wrong")
    const wrong = "Wr0ng-Secret-Zq81"
    const service = startService(saslEnv(names, wrong))
    const code = await Promise.race([
      service.exited,
      new Promise<"running">((done) => setTimeout(() => done("running"), 60_000)),
    ])
    await service.stop("SIGKILL")
    const output = service.output()
    assert.notStrictEqual(code, "running", `still running a minute after a failed login: ${output}`)
    assert.notStrictEqual(code, 0, output)
    assert.match(
      output,
      /SASL PLAIN authentication failed: Authentication failed: Invalid username or password/,
    )
    assert.include(output, "the service stopped after a failure")
    assert.notInclude(output, wrong)
    assert.notInclude(output, kafkaSasl.password())
  })
})
