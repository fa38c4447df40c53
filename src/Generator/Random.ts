/**
 * Seeded randomness for the test data generator.
 *
 * Every record is a pure function of (seed, index): its random stream is seeded from a hash
 * of the two, so record 1,000,000 can be rebuilt without replaying the ones before it (the
 * duplicate of an earlier record is simply that record generated again).
 */

export interface Random {
  /** Uniform in [0, 1). */
  next(): number
  /** Uniform integer in [min, max], both inclusive. */
  int(min: number, max: number): number
  chance(p: number): boolean
  pick<A>(items: NonEmpty<A>): A
}

export type NonEmpty<A> = readonly [A, ...ReadonlyArray<A>]

const TWO_32 = 4_294_967_296

/** A 32-bit finaliser with good avalanche, so neighbouring indexes give unrelated streams. */
export const mix32 = (x: number): number => {
  let h = x >>> 0
  h ^= h >>> 16
  h = Math.imul(h, 0x7feb352d)
  h ^= h >>> 15
  h = Math.imul(h, 0x846ca68b)
  h ^= h >>> 16
  return h >>> 0
}

/**
 * Hash of (seed, index, stream). `stream` separates independent draws for the same record
 * (its kind, its content, its defect) so that deciding one never shifts the others.
 */
export const hash = (seed: number, index: number, stream: number): number => {
  const lo = index % TWO_32
  const hi = Math.floor(index / TWO_32)
  let h = mix32((seed ^ Math.imul(stream + 1, 0x9e3779b9)) >>> 0)
  h = mix32((h + lo) >>> 0)
  return mix32((h ^ Math.imul(hi + 1, 0x85ebca6b)) >>> 0)
}

/** A uniform draw in [0, 1) that depends only on (seed, index, stream). */
export const unitAt = (seed: number, index: number, stream: number): number =>
  hash(seed, index, stream) / TWO_32

/**
 * mulberry32: tiny, fast, and good enough for test data. A class rather than closures: one
 * is made per record, and methods on the prototype cost nothing to create.
 */
class Mulberry32 implements Random {
  private state: number

  constructor(seed: number) {
    this.state = seed >>> 0
  }

  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0
    let t = this.state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / TWO_32
  }

  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1))
  }

  chance(p: number): boolean {
    return this.next() < p
  }

  pick<A>(items: NonEmpty<A>): A {
    return items[this.int(0, items.length - 1)] ?? items[0]
  }
}

export const mulberry32 = (seed: number): Random => new Mulberry32(seed)

/** The random stream of one record. */
export const randomAt = (seed: number, index: number, stream: number): Random =>
  mulberry32(hash(seed, index, stream))
