/**
 * The memory engine (the per-isolate cache in front of MissionState): hits, misses, entries and
 * bytes, TTL expiry on an injected clock, least-recently-used eviction at max_entries, and the
 * astra_memory_engine_* series it records ({store_type}: hits and misses counted, size as an
 * UpDownCounter of changes whose sum is the current size).
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { freshState } from "../../../lib/domain/detector";
import { historyCache, phaseCache } from "../../../lib/mission/mission-client";
import { IsolateCache, type StoreType } from "../../../lib/mission/isolate-cache";
import { metricReader } from "../../../lib/telemetry/meter-provider";
import { toMetricPoints, type MetricPoint } from "../../../lib/telemetry/export/points";
import { call } from "../support/api";

const collect = async (): Promise<MetricPoint[]> => toMetricPoints((await metricReader.collect()).resourceMetrics);
const sum = (points: MetricPoint[], name: string, storeType: StoreType) =>
  points.filter((p) => p.name === name && p.attributes.store_type === storeType).reduce((n, p) => n + (p.value ?? 0), 0);
const HITS = "astra_memory_engine_hits_total";
const MISSES = "astra_memory_engine_misses_total";
const SIZE = "astra_memory_engine_size_bytes";

/** What an entry weighs: the key plus the value as JSON text. */
const weight = (key: string, value: unknown) => key.length + JSON.stringify(value).length;

/** A cache on a manual clock (TTL 2000 ms, as in production, unless told otherwise). */
function fixture(options: { ttlMillis?: number; maxEntries?: number; storeType?: StoreType } = {}) {
  let t = 1_000_000;
  const cache = new IsolateCache<unknown>(options.storeType ?? "history", { ttlMillis: options.ttlMillis ?? 2000, maxEntries: options.maxEntries, now: () => t });
  return { cache, advance: (ms: number) => (t += ms) };
}

beforeEach(async () => {
  await collect(); // whatever earlier tests (and the setup's cache clearing) recorded
});

describe("IsolateCache", () => {
  it("counts a miss, then serves what was set as hits; entries and bytes follow", async () => {
    const { cache } = fixture();
    expect(cache.stats()).toEqual({ entries: 0, bytes: 0, hits: 0, misses: 0, ttl_ms: 2000, max_entries: 1000 });
    expect(cache.get("sat-1")).toBeUndefined();
    const readings = [{ voltage: 28, temperature: 20 }];
    cache.set("sat-1", readings);
    expect(cache.get("sat-1")).toEqual(readings);
    expect(cache.get("sat-1")).toBe(readings);
    expect(cache.get("sat-2")).toBeUndefined();
    expect(cache.stats()).toEqual({ entries: 1, bytes: weight("sat-1", readings), hits: 2, misses: 2, ttl_ms: 2000, max_entries: 1000 });
  });

  it("replaces an entry set again under the same key (one entry, the new size)", () => {
    const { cache } = fixture();
    cache.set("k", "a much longer first value");
    cache.set("k", "short");
    expect(cache.get("k")).toBe("short");
    expect(cache.stats()).toMatchObject({ entries: 1, bytes: weight("k", "short") });
  });

  it("expires an entry exactly ttl_ms after it was set, on the injected clock, and frees its bytes", () => {
    const { cache, advance } = fixture({ ttlMillis: 2000 });
    cache.set("k", { phase: "NOMINAL_OPS" });
    advance(1999);
    expect(cache.get("k")).toEqual({ phase: "NOMINAL_OPS" }); // still live 1 ms before its end
    advance(1);
    expect(cache.get("k")).toBeUndefined(); // at its end it is gone
    expect(cache.stats()).toMatchObject({ entries: 0, bytes: 0, hits: 1, misses: 1 });
    // A read does not extend the TTL; setting again starts a new one.
    cache.set("k", 1);
    advance(1500);
    expect(cache.get("k")).toBe(1);
    advance(500);
    expect(cache.get("k")).toBeUndefined();
    // An explicit `now` wins over the clock.
    cache.set("k", 2, 0);
    expect(cache.get("k", 1999)).toBe(2);
    expect(cache.get("k", 2000)).toBeUndefined();
  });

  it("keeps at most max_entries, evicting the least recently used (a hit counts as use)", () => {
    const { cache } = fixture({ maxEntries: 2 });
    cache.set("a", 1);
    cache.set("b", 2);
    expect(cache.get("a")).toBe(1); // a is now more recent than b
    cache.set("c", 3); // over the bound: b goes
    expect(cache.stats()).toMatchObject({ entries: 2, bytes: weight("a", 1) + weight("c", 3), max_entries: 2 });
    expect(cache.get("b")).toBeUndefined();
    expect(cache.get("a")).toBe(1);
    expect(cache.get("c")).toBe(3);
    cache.set("d", 4); // a was read before c: a goes
    expect(cache.get("a")).toBeUndefined();
    expect(cache.stats()).toMatchObject({ entries: 2, bytes: weight("c", 3) + weight("d", 4) });
  });

  it("delete and clear drop entries and their bytes", () => {
    const { cache } = fixture();
    cache.set("a", [1, 2, 3]);
    cache.set("b", "x");
    cache.delete("a");
    cache.delete("missing");
    expect(cache.stats()).toMatchObject({ entries: 1, bytes: weight("b", "x") });
    cache.clear();
    expect(cache.stats()).toMatchObject({ entries: 0, bytes: 0 });
    expect(cache.get("b")).toBeUndefined();
  });

  it("records hits and misses as counters and size changes whose sum is the current size, per store_type", async () => {
    const history = fixture({ storeType: "history", maxEntries: 2 });
    const phase = fixture({ storeType: "phase" });
    history.cache.get("a"); // miss
    history.cache.set("a", [{ v: 1 }]);
    history.cache.set("b", [{ v: 2 }, { v: 3 }]);
    history.cache.get("a"); // hit
    history.cache.set("a", [{ v: 4 }]); // replaced: -old +new
    phase.cache.set("phase", "NOMINAL_OPS");
    phase.cache.get("phase"); // hit
    phase.cache.get("phase"); // hit
    const first = await collect();
    expect(sum(first, HITS, "history")).toBe(1);
    expect(sum(first, MISSES, "history")).toBe(1);
    expect(sum(first, SIZE, "history")).toBe(history.cache.stats().bytes);
    expect(sum(first, HITS, "phase")).toBe(2);
    expect(sum(first, MISSES, "phase")).toBe(0);
    expect(sum(first, SIZE, "phase")).toBe(weight("phase", "NOMINAL_OPS"));
    expect(first.find((p) => p.name === SIZE)?.kind).toBe("updowncounter");

    // Later changes arrive as deltas: eviction, expiry, delete and clear all shrink the sum.
    history.cache.set("c", [{ v: 5 }]); // evicts b
    history.advance(2000);
    history.cache.get("a"); // expired: a miss, and a goes
    history.cache.set("d", "x");
    phase.cache.clear();
    const second = await collect();
    expect(sum(second, MISSES, "history")).toBe(1);
    expect(sum(second, HITS, "history")).toBe(0);
    expect(sum(first, SIZE, "history") + sum(second, SIZE, "history")).toBe(history.cache.stats().bytes);
    expect(history.cache.stats()).toMatchObject({ entries: 2, bytes: weight("c", [{ v: 5 }]) + weight("d", "x"), hits: 1, misses: 2 });
    expect(sum(first, SIZE, "phase") + sum(second, SIZE, "phase")).toBe(0);
    // Over both collections the counters add up to the cache's own counts.
    for (const { cache } of [history, phase]) {
      expect(sum(first, HITS, cache.storeType) + sum(second, HITS, cache.storeType)).toBe(cache.stats().hits);
      expect(sum(first, MISSES, cache.storeType) + sum(second, MISSES, cache.storeType)).toBe(cache.stats().misses);
    }
  });
});

describe("the isolate's caches in GET /api/v1/memory/stats", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("reports isolate_cache per store as the caches count it; their TTL runs on the clock they read", async () => {
    // The isolate's caches read Date.now at each call: faked here, it stands still until moved.
    vi.useFakeTimers({ toFake: ["Date"], now: Date.now() - 60_000 });
    // Hits and misses count over the isolate's life: this test looks at what it adds.
    const before = { phase: phaseCache.stats(), history: historyCache.stats() };
    phaseCache.set("phase", "NOMINAL_OPS");
    historyCache.set("sat-1", freshState());
    expect(phaseCache.get("phase")).toBe("NOMINAL_OPS");
    expect(historyCache.get("sat-2")).toBeUndefined();
    vi.setSystemTime(Date.now() + phaseCache.stats().ttl_ms - 1);
    expect(phaseCache.get("phase")).toBe("NOMINAL_OPS");
    vi.setSystemTime(Date.now() + 1);
    expect(phaseCache.get("phase")).toBeUndefined();
    expect(historyCache.get("sat-1")).toBeUndefined();

    const { status, body } = await call("GET", "/api/v1/memory/stats");
    expect(status).toBe(200);
    expect(body.isolate_cache).toEqual({ phase: phaseCache.stats(), history: historyCache.stats() });
    const { phase, history } = body.isolate_cache;
    expect(phase).toMatchObject({ entries: 0, bytes: 0, ttl_ms: 2000, max_entries: 1 });
    expect([phase.hits - before.phase.hits, phase.misses - before.phase.misses]).toEqual([2, 1]);
    expect(history).toMatchObject({ entries: 0, bytes: 0, ttl_ms: 2000, max_entries: 5000 });
    expect([history.hits - before.history.hits, history.misses - before.history.misses]).toEqual([0, 2]);
  });
});
