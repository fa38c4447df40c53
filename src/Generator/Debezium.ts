/**
 * A Debezium change stream (`--format debezium`): creates, updates and deletes of the rows of
 * one table, as Debezium's PostgreSQL connector writes them with the JSON converter, without
 * schemas or (`schemas`, the converter's `schemas.enable=true`) with each key and value inside a
 * `{schema, payload}` envelope. Each message is keyed as Debezium keys it, by the table's
 * primary key as a JSON object (`{"id":17}`), and a delete is followed, at a ratio, by its tombstone (Debezium's
 * `tombstones.on.delete`). Unlike the plain stream, an event depends on the ones before it (an
 * update's `before` is the row as the last event left it), so the stream is drawn in order; the
 * same seed still gives the same stream.
 */
import { isJsonObject, type JsonObject } from "../Domain/Record.js"
import { type NonEmpty, type Random, randomAt } from "./Random.js"
import type { GeneratedRecord } from "./Records.js"

export interface DebeziumOptions {
  /** Rows of the table the events are drawn over: ids 1..rows. */
  readonly rows: number
  /** Share of the change events that delete a row (an empty table is created into instead). */
  readonly deleteRatio: number
  /** Share of the deletes followed by their tombstone. */
  readonly tombstoneRatio: number
  /** Keys and values inside the JSON converter's `{schema, payload}` envelope. */
  readonly schemas?: boolean
}

export const defaultDebeziumOptions: DebeziumOptions = {
  rows: 1000,
  deleteRatio: 0.1,
  tombstoneRatio: 1,
  schemas: false,
}

const field = (name: string, type: string, optional = false): JsonObject => ({ type, optional, field: name })

const ROW_FIELDS: ReadonlyArray<JsonObject> = [
  field("id", "int32"),
  field("customer", "string"),
  field("status", "string"),
  field("amount", "double"),
  field("currency", "string"),
  field("version", "int32"),
]

/** The schemas the JSON converter writes beside each payload (schemas.enable=true). */
const KEY_SCHEMA: JsonObject = {
  type: "struct",
  fields: [field("id", "int32")],
  optional: false,
  name: "shop.public.orders.Key",
}

const rowSchema = (name: string): JsonObject => ({
  type: "struct",
  fields: [...ROW_FIELDS],
  optional: true,
  name: "shop.public.orders.Value",
  field: name,
})

const VALUE_SCHEMA: JsonObject = {
  type: "struct",
  fields: [
    rowSchema("before"),
    rowSchema("after"),
    {
      type: "struct",
      fields: [
        field("version", "string"),
        field("connector", "string"),
        field("name", "string"),
        field("ts_ms", "int64"),
        field("db", "string"),
        field("schema", "string"),
        field("table", "string"),
        field("lsn", "int64", true),
      ],
      optional: false,
      name: "io.debezium.connector.postgresql.Source",
      field: "source",
    },
    field("op", "string"),
    field("ts_ms", "int64", true),
    {
      type: "struct",
      fields: [field("id", "string"), field("total_order", "int64"), field("data_collection_order", "int64")],
      optional: true,
      name: "event.block",
      field: "transaction",
    },
  ],
  optional: false,
  name: "shop.public.orders.Envelope",
}

const STATUSES: NonEmpty<string> = ["pending", "paid", "shipped", "cancelled"]
const CURRENCIES: NonEmpty<string> = ["USD", "EUR", "GBP"]

const SOURCE = { version: "2.7.3.Final", connector: "postgresql", name: "shop", db: "shop" } as const

// Independent random streams per event (see Random.hash).
const OP = 0
const ROW = 1
const CONTENT = 2
const TOMBSTONE = 3

/** A row of the `orders` table: what the service stores for it with a pipeline keyed by `id`. */
const row = (rng: Random, id: number, version: number, customer?: string): JsonObject => ({
  id,
  customer: customer ?? `customer-${rng.int(1, 500)}`,
  status: rng.pick(STATUSES),
  amount: rng.int(100, 200_000) / 100,
  currency: rng.pick(CURRENCIES),
  version,
})

/** The key of row `id` on the wire, as Debezium's JSON converter writes it (with `schemas`, in its envelope). */
export const debeziumKey = (id: number, schemas = false): string =>
  JSON.stringify(schemas ? { schema: KEY_SCHEMA, payload: { id } } : { id })

/** A change event's payload, out of its `{schema, payload}` envelope when it has one. */
export const payloadOf = (value: JsonObject): JsonObject =>
  "schema" in value && isJsonObject(value.payload) ? value.payload : value

/**
 * The stream's messages, `count` of them (a delete and its tombstone are two) or without end.
 * `index` counts messages; `baseTime` (epoch ms) dates the events, one millisecond apart.
 */
export function* changeStream(
  seed: number,
  baseTime: number,
  options: DebeziumOptions,
  count = Infinity,
): Generator<GeneratedRecord> {
  const table = new Map<number, JsonObject>()
  // The ids in the table, for drawing a row to delete; `at` is each id's place in it.
  const present: Array<number> = []
  const at = new Map<number, number>()
  const add = (id: number, value: JsonObject) => {
    table.set(id, value)
    at.set(id, present.length)
    present.push(id)
  }
  const remove = (id: number) => {
    table.delete(id)
    const i = at.get(id) ?? 0
    const last = present.pop() ?? id
    if (last !== id) {
      present[i] = last
      at.set(last, i)
    }
    at.delete(id)
  }
  let index = 0
  for (let event = 0; index < count; event++) {
    const ts = baseTime + event
    const source = { ...SOURCE, ts_ms: ts, schema: "public", table: "orders", lsn: 1_000_000 + event }
    const envelope = (op: string, before: JsonObject | null, after: JsonObject | null): JsonObject => {
      const payload = { before, after, source, op, ts_ms: ts, transaction: null }
      return options.schemas === true ? { schema: VALUE_SCHEMA, payload } : payload
    }
    const keyOf = (id: number) => debeziumKey(id, options.schemas === true)
    const rowRng = randomAt(seed, event, ROW)
    const content = randomAt(seed, event, CONTENT)
    if (present.length > 0 && randomAt(seed, event, OP).chance(options.deleteRatio)) {
      const id = present[rowRng.int(0, present.length - 1)] ?? 0
      const before = table.get(id) ?? null
      remove(id)
      const key = keyOf(id)
      yield { index: index++, kind: "delete", key, value: envelope("d", before, null) }
      if (index < count && randomAt(seed, event, TOMBSTONE).chance(options.tombstoneRatio))
        yield { index: index++, kind: "tombstone", key, value: new Uint8Array(0), tombstone: true }
      continue
    }
    const id = rowRng.int(1, options.rows)
    const before = table.get(id)
    if (before === undefined) {
      const after = row(content, id, 0)
      add(id, after)
      yield { index: index++, kind: "create", key: keyOf(id), value: envelope("c", null, after) }
    } else {
      const version = typeof before.version === "number" ? before.version + 1 : 1
      const customer = typeof before.customer === "string" ? before.customer : undefined
      const after = row(content, id, version, customer)
      table.set(id, after)
      yield { index: index++, kind: "update", key: keyOf(id), value: envelope("u", before, after) }
    }
  }
}

/** The table a stream of change events leaves: each row by its id, as its last event left it. */
export const finalTable = (messages: Iterable<GeneratedRecord>): Map<string, JsonObject> => {
  const table = new Map<string, JsonObject>()
  for (const m of messages) {
    if (m.tombstone === true || m.value instanceof Uint8Array) continue
    const { op, before, after } = payloadOf(m.value)
    if ((op === "c" || op === "u" || op === "r") && isJsonObject(after)) table.set(String(after.id), after)
    else if (op === "d" && isJsonObject(before)) table.delete(String(before.id))
  }
  return table
}
