/**
 * Point and anomaly ids. An id names its satellite (`an_<32 hex>_<satellite_id>`), so feedback goes
 * straight to that satellite's object; ids minted before per-satellite state (`an_<32 hex>`) are
 * found through the mission's fleet index.
 */

/** What a satellite id may be (the API's `satellite_id`); it also ends every new id. */
export const SATELLITE_ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
/** Any anomaly id the API accepts: new (naming the satellite) or from before the change. */
export const ANOMALY_ID_PATTERN = /^an_[0-9a-f]{32}(?:_[A-Za-z0-9._-]{1,64})?$/;

/**
 * A new id for a judged point: `an_` when anomalous, `tp_` otherwise.
 * @example pointId(true, "sat-1") // "an_5f0c…(32 hex)_sat-1"
 */
export function pointId(isAnomaly: boolean, satelliteId: string): string {
  return `${isAnomaly ? "an" : "tp"}_${crypto.randomUUID().replaceAll("-", "")}_${satelliteId}`;
}

/** The satellite an anomaly id names, or undefined for an id minted before the change. */
export function satelliteOfAnomalyId(id: string): string | undefined {
  // "an_" + 32 hex digits, then "_" and the satellite id.
  return id.length > 36 && id[35] === "_" ? id.slice(36) : undefined;
}
