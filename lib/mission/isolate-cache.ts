/**
 * The "memory engine": a per-isolate cache in front of the MissionState Durable Object. Entries
 * expire after a short TTL, so isolates converge on the object's state within that time.
 * Hits, misses and size are reported per store as astra_memory_engine_* metrics.
 */
import { instruments } from "../telemetry/instruments";

export type StoreType = "phase" | "history";

interface Entry<V> {
  value: V;
  bytes: number;
  expiresAt: number;
}

export interface CacheStats {
  entries: number;
  bytes: number;
  hits: number;
  misses: number;
  ttl_ms: number;
  max_entries: number;
}

export interface IsolateCacheOptions {
  /** Time an entry is served before the object is asked again. Default 2000 ms. */
  ttlMillis?: number;
  /** Entries kept; the least recently used goes first. Default 1000. */
  maxEntries?: number;
  /** Clock for the TTL (tests pass a manual one). Default `Date.now`, looked up at each call. */
  now?: () => number;
}

export class IsolateCache<V> {
  readonly #entries = new Map<string, Entry<V>>();
  readonly #ttlMillis: number;
  readonly #maxEntries: number;
  readonly #now: () => number;
  #bytes = 0;
  #hits = 0;
  #misses = 0;

  constructor(
    readonly storeType: StoreType,
    options: IsolateCacheOptions = {},
  ) {
    this.#ttlMillis = options.ttlMillis ?? 2000;
    this.#maxEntries = options.maxEntries ?? 1000;
    this.#now = options.now ?? (() => Date.now());
  }

  /** The live value for `key`, counting a hit or a miss. */
  get(key: string, now = this.#now()): V | undefined {
    const entry = this.#entries.get(key);
    if (entry && entry.expiresAt > now) {
      // Re-insert to keep Map order as recency order for LRU eviction.
      this.#entries.delete(key);
      this.#entries.set(key, entry);
      this.#hits++;
      instruments.memoryEngineHits.add(1, { store_type: this.storeType });
      return entry.value;
    }
    if (entry) this.#remove(key, entry);
    this.#misses++;
    instruments.memoryEngineMisses.add(1, { store_type: this.storeType });
    return undefined;
  }

  set(key: string, value: V, now = this.#now()): void {
    const old = this.#entries.get(key);
    if (old) this.#remove(key, old);
    const bytes = approximateBytes(key, value);
    this.#entries.set(key, { value, bytes, expiresAt: now + this.#ttlMillis });
    this.#changeBytes(bytes);
    while (this.#entries.size > this.#maxEntries) {
      const [oldestKey, oldest] = this.#entries.entries().next().value as [string, Entry<V>];
      this.#remove(oldestKey, oldest);
    }
  }

  delete(key: string): void {
    const entry = this.#entries.get(key);
    if (entry) this.#remove(key, entry);
  }

  /** Drops every entry (tests; and a store whose source of truth was reset). */
  clear(): void {
    for (const [key, entry] of [...this.#entries]) this.#remove(key, entry);
  }

  stats(): CacheStats {
    return {
      entries: this.#entries.size,
      bytes: this.#bytes,
      hits: this.#hits,
      misses: this.#misses,
      ttl_ms: this.#ttlMillis,
      max_entries: this.#maxEntries,
    };
  }

  #remove(key: string, entry: Entry<V>): void {
    this.#entries.delete(key);
    this.#changeBytes(-entry.bytes);
  }

  #changeBytes(delta: number): void {
    this.#bytes += delta;
    // An UpDownCounter of changes: summed over isolates it is the total cache size.
    instruments.memoryEngineSize.add(delta, { store_type: this.storeType });
  }
}

/** Size of the entry as JSON text (UTF-16 code units ≈ bytes for this ASCII data). */
function approximateBytes(key: string, value: unknown): number {
  return key.length + (JSON.stringify(value)?.length ?? 0);
}
