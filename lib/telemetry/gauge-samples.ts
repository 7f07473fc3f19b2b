/**
 * When each gauge stream was last recorded. The SDK's data point only carries the collection
 * time; the export carries the sample time instead, so the aggregator keeps the latest sample
 * across isolates and an isolate that flushes late cannot overwrite a newer value.
 */

/** Attribute values are flattened to strings: the label values Prometheus will show. */
export type PointAttributes = Record<string, string>;

/** Attributes as strings, keys sorted, `undefined`/`null` dropped, arrays comma-joined. */
export function flattenAttributes(attributes: Record<string, unknown>): PointAttributes {
  const out: PointAttributes = {};
  for (const key of Object.keys(attributes).sort()) {
    const v = attributes[key];
    if (v === undefined || v === null) continue;
    out[key] = Array.isArray(v) ? v.join(",") : String(v);
  }
  return out;
}

const sampleTimes = new Map<string, number>();
const MAX_GAUGE_STREAMS = 1000;
const sampleKey = (name: string, flat: PointAttributes): string => `${name}|${JSON.stringify(flat)}`;

/** Notes that gauge `name` was recorded at `timeMs`. Bounded (oldest forgotten first). */
export function noteGaugeSample(name: string, attributes: Record<string, unknown>, timeMs: number): void {
  const key = sampleKey(name, flattenAttributes(attributes));
  sampleTimes.delete(key);
  sampleTimes.set(key, timeMs);
  if (sampleTimes.size > MAX_GAUGE_STREAMS) sampleTimes.delete(sampleTimes.keys().next().value!);
}

/** When gauge `name` with these (flattened) attributes was last recorded, if noted. */
export function gaugeSampleTime(name: string, attributes: PointAttributes): number | undefined {
  return sampleTimes.get(sampleKey(name, attributes));
}
