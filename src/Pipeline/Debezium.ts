/**
 * Debezium change events (PIPELINE__SOURCE_FORMAT=debezium): the envelope, schema-less or inside
 * its `schema`/`payload` wrapper, is unwrapped. A create, a snapshot read or an update (`op` c,
 * r, u) becomes its `after` row, a record like any other; a delete (`d`) deletes the document of
 * its key, which is the message key's fields, in their order, made a key as the pipeline makes
 * one (one field: its value's text; several: the JSON array of the values). Anything else (no
 * `op`, a truncate, a row that is not an object, a delete without a usable key) is a dead letter
 * with the reason. The tombstone Debezium sends after a delete is keyed the same way
 * (Parse.ts), so that MONGODB__ON_TOMBSTONE=delete finds the row's document.
 */
import { isJsonObject, type Json, type JsonObject, KeyProblem, keyOf } from "../Domain/Record.js"
import { parseExact } from "./Parse.js"

export type ChangeEvent =
  | { readonly _tag: "Upsert"; readonly row: JsonObject }
  | { readonly _tag: "Delete"; readonly key: string }
  | { readonly _tag: "Invalid"; readonly rule: string; readonly message: string }

const invalid = (rule: string, message: string): ChangeEvent => ({ _tag: "Invalid", rule, message })

/** The payload of a `{schema, payload}` wrapper, or the value itself. */
const unwrap = (value: Json): Json =>
  isJsonObject(value) && "payload" in value && "schema" in value ? value.payload! : value

/**
 * The key of a delete, or of the tombstone Debezium sends after it, from the message key (JSON,
 * wrapped or not; or plain text): the document key the row was stored under.
 */
export const deleteKey = (
  key: Buffer | string | null | undefined,
  maxKeyBytes: number,
): string | KeyProblem => {
  const text = key === null || key === undefined ? "" : key.toString()
  if (text === "") return new KeyProblem(0, "is missing (the message has no key)")
  let parsed: Json
  try {
    parsed = unwrap(parseExact(text) as Json)
  } catch {
    return keyOf([text], maxKeyBytes)
  }
  if (!isJsonObject(parsed)) return keyOf([parsed], maxKeyBytes)
  const values = Object.values(parsed)
  return values.length === 0 ? new KeyProblem(0, "has no fields") : keyOf(values, maxKeyBytes)
}

export const changeEvent = (
  value: JsonObject,
  messageKey: Buffer | string | null | undefined,
  maxKeyBytes: number,
): ChangeEvent => {
  const envelope = unwrap(value)
  if (!isJsonObject(envelope)) return invalid("debezium", "the payload is not an object")
  const op = envelope.op
  if (op === "c" || op === "r" || op === "u") {
    const after = envelope.after
    return isJsonObject(after)
      ? { _tag: "Upsert", row: after }
      : invalid("debezium", `a change event (op "${op}") without an "after" row`)
  }
  if (op === "d") {
    const key = deleteKey(messageKey, maxKeyBytes)
    return typeof key === "string"
      ? { _tag: "Delete", key }
      : invalid("debezium_key", `a delete whose message key ${key.problem}: no document to delete`)
  }
  if (op === "t") return invalid("debezium", "a truncate event: the service does not empty the collection")
  return invalid(
    "debezium",
    op === undefined ? 'not a change event: no "op" field' : `unknown op ${JSON.stringify(op)}`,
  )
}
