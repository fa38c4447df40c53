/**
 * The duplicate check's memory: the most recent keys, bounded in count (oldest evicted first)
 * and in age (a key is forgotten `ttlMs` after it was first seen).
 *
 * Keys sit in a ring buffer in first-seen order, with their source offset and time; an
 * open-addressing index (linear probing over an Int32Array, 32-bit hashes kept beside the
 * keys) finds them. A JS Map would do, but with 100,000 fresh string keys every lookup costs
 * several cache misses (its chains point at the key strings), and deleting from its front is
 * slow in V8; here a miss usually reads one slot of a typed array.
 */

const empty = 0 // table cells hold ring slot + 1

/**
 * FNV-1a over every UTF-16 unit: keys that share their beginning and end still spread (keys
 * are bounded by PIPELINE__MAX_KEY_BYTES, and a lookup compares the whole key anyway).
 */
export const hashOf = (key: string): number => {
  let hash = 0x811c9dc5 ^ key.length
  const length = key.length
  for (let i = 0; i < length; i++) hash = Math.imul(hash ^ key.charCodeAt(i), 0x01000193)
  return hash | 0
}

export class KeyWindow {
  private readonly keys: Array<string | undefined>
  private readonly offsets: Array<string | undefined>
  private times: Float64Array
  private hashes: Int32Array
  private table: Int32Array
  private mask: number
  private head = 0
  private count = 0
  private live = 0
  // Deletes of the batches being run, by key: the offset of the latest.
  private readonly deletes = new Map<string, string>()

  constructor(
    readonly maxKeys: number,
    readonly ttlMs: number,
  ) {
    // The ring is allocated on first use up to maxKeys; the index grows with it.
    this.keys = []
    this.offsets = []
    this.times = new Float64Array(Math.min(maxKeys, 1024))
    this.hashes = new Int32Array(Math.min(maxKeys, 1024))
    this.table = new Int32Array(2048)
    this.mask = this.table.length - 1
  }

  /** Keys remembered now (expired ones not yet evicted included until they are looked up or reach the front). */
  get size(): number {
    return this.live
  }

  /** The source offset a key was first seen at, if that is within the TTL. */
  lookup(key: string, now: number): string | undefined {
    const hash = hashOf(key)
    let index = hash & this.mask
    for (let cell = this.table[index]!; cell !== empty; cell = this.table[index]!) {
      const slot = cell - 1
      if (this.hashes[slot] === hash && this.keys[slot] === key) {
        if (now - this.times[slot]! < this.ttlMs) return this.offsets[slot]
        // Expired: forget it now; its ring slot stays until it reaches the front.
        this.removeAt(index)
        this.keys[slot] = undefined
        this.offsets[slot] = undefined
        this.live--
        return undefined
      }
      index = (index + 1) & this.mask
    }
    return undefined
  }

  /**
   * A delete of `key` at `offset` (a tombstone, a change event's delete): the key is forgotten if
   * it was remembered from an earlier offset, and until `clearDeleted` a record of the key after
   * `offset` whose first copy came before it is not a duplicate (the batch's own records before
   * the delete are remembered after this is called). Offsets compare as numbers.
   */
  noteDelete(key: string, offset: string, now: number): void {
    this.forgetBefore(key, offset, now)
    const known = this.deletes.get(key)
    if (known === undefined || Number(known) < Number(offset)) this.deletes.set(key, offset)
  }

  /** Whether a delete noted for `key` lies after `seenAt` and before `offset`. */
  deletedBetween(key: string, seenAt: string, offset: string): boolean {
    const deleted = this.deletes.get(key)
    return deleted !== undefined && Number(seenAt) < Number(deleted) && Number(deleted) < Number(offset)
  }

  /** Drops the delete noted for `key` at `offset` (its batch has run). */
  clearDeleted(key: string, offset: string): void {
    if (this.deletes.get(key) === offset) this.deletes.delete(key)
  }

  /** Forgets `key` if it was remembered from an offset before `offset` (a delete at `offset`). */
  forgetBefore(key: string, offset: string, now: number): void {
    const seenAt = this.lookup(key, now)
    if (seenAt !== undefined && Number(seenAt) < Number(offset)) this.forget(key)
  }

  /** Forgets `key` now (its ring slot stays until it reaches the front). */
  forget(key: string): void {
    const hash = hashOf(key)
    let index = hash & this.mask
    for (let cell = this.table[index]!; cell !== empty; cell = this.table[index]!) {
      const slot = cell - 1
      if (this.hashes[slot] === hash && this.keys[slot] === key) {
        this.removeAt(index)
        this.keys[slot] = undefined
        this.offsets[slot] = undefined
        this.live--
        return
      }
      index = (index + 1) & this.mask
    }
  }

  /**
   * Puts back a key seen at `at` (a saved window read again after a restart or a partition
   * move): remembered unless the window holds it already or it is past the TTL.
   */
  restore(key: string, offset: string, at: number, now: number): void {
    if (now - at >= this.ttlMs || this.lookup(key, now) !== undefined) return
    this.remember(key, offset, at)
  }

  /** Remembers a key not in the window; returns how many keys were evicted to make room. */
  remember(key: string, offset: string, now: number): number {
    let evicted = 0
    while (this.count > 0 && (this.count >= this.maxKeys || now - this.times[this.head]! >= this.ttlMs)) {
      evicted += this.evictOldest()
    }
    const slot = (this.head + this.count) % this.maxKeys
    this.ensureCapacity(slot)
    const hash = hashOf(key)
    this.keys[slot] = key
    this.offsets[slot] = offset
    this.times[slot] = now
    this.hashes[slot] = hash
    this.count++
    this.live++
    if (this.live * 2 > this.table.length) this.rebuild(this.table.length * 2)
    this.insert(hash, slot)
    return evicted
  }

  private evictOldest(): number {
    const slot = this.head
    this.head = (slot + 1) % this.maxKeys
    this.count--
    const key = this.keys[slot]
    if (key === undefined) return 0 // expired and forgotten already
    this.keys[slot] = undefined
    this.offsets[slot] = undefined
    let index = this.hashes[slot]! & this.mask
    while (this.table[index] !== slot + 1) index = (index + 1) & this.mask
    this.removeAt(index)
    this.live--
    return 1
  }

  private insert(hash: number, slot: number): void {
    let index = hash & this.mask
    while (this.table[index] !== empty) index = (index + 1) & this.mask
    this.table[index] = slot + 1
  }

  /** Linear-probing deletion without tombstones: later cells of the run move back into the gap. */
  private removeAt(gap: number): void {
    let hole = gap
    let index = (hole + 1) & this.mask
    while (this.table[index] !== empty) {
      const home = this.hashes[this.table[index]! - 1]! & this.mask
      // Move the cell back unless its home lies cyclically in (hole, index].
      if (
        (index > hole && (home <= hole || home > index)) ||
        (index < hole && home <= hole && home > index)
      ) {
        this.table[hole] = this.table[index]!
        hole = index
      }
      index = (index + 1) & this.mask
    }
    this.table[hole] = empty
  }

  private ensureCapacity(slot: number): void {
    if (slot < this.times.length) return
    const length = Math.min(this.maxKeys, this.times.length * 2)
    const times = new Float64Array(length)
    times.set(this.times)
    const hashes = new Int32Array(length)
    hashes.set(this.hashes)
    this.times = times
    this.hashes = hashes
  }

  private rebuild(size: number): void {
    this.table = new Int32Array(size)
    this.mask = size - 1
    for (let i = 0; i < this.count; i++) {
      const slot = (this.head + i) % this.maxKeys
      if (this.keys[slot] !== undefined) this.insert(this.hashes[slot]!, slot)
    }
  }
}
