/**
 * Seeded pseudo-random numbers for the simulator: mulberry32 (32-bit state, fast, good enough for
 * signal noise and fault schedules), with named sub-streams so that, for example, changing the
 * fault options does not change the nominal signals of a satellite.
 */

/** mulberry32: returns a function giving uniform floats in [0, 1). */
export function mulberry32(seed) {
  let a = seed >>> 0;
  return function next() {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** FNV-1a of a string, 32-bit: turns "seed:label" into a sub-stream seed. */
export function hash32(text) {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

export class Rng {
  /** @param {number} seed any integer; @param {string} [label] names the sub-stream */
  constructor(seed, label = "") {
    this.seed = seed >>> 0;
    this.label = label;
    this.next = mulberry32(hash32(`${this.seed}:${label}`));
    this.spare = undefined;
  }

  /** An independent stream named `label` under the same seed. */
  fork(label) {
    return new Rng(this.seed, this.label ? `${this.label}/${label}` : label);
  }

  uniform(low = 0, high = 1) {
    return low + (high - low) * this.next();
  }

  /** Integer in [low, high], both ends included. */
  int(low, high) {
    return low + Math.floor(this.next() * (high - low + 1));
  }

  chance(p) {
    return this.next() < p;
  }

  pick(items) {
    return items[Math.floor(this.next() * items.length)];
  }

  sign() {
    return this.next() < 0.5 ? -1 : 1;
  }

  /** Exponential with the given mean. */
  exponential(mean) {
    return -mean * Math.log(1 - this.next());
  }

  /** Log-uniform in [low, high] (both > 0). */
  logUniform(low, high) {
    return Math.exp(this.uniform(Math.log(low), Math.log(high)));
  }

  /** Gaussian (Box-Muller, the second value kept for the next call). */
  normal(mean = 0, sd = 1) {
    if (this.spare !== undefined) {
      const z = this.spare;
      this.spare = undefined;
      return mean + sd * z;
    }
    let u = 0;
    while (u === 0) u = this.next();
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return mean + sd * r * Math.cos(2 * Math.PI * v);
  }
}
