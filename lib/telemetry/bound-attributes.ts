/**
 * Metric attribute sets made once per label combination and reused, instead of a new object per
 * request: the label values are closed sets (route pattern, status, method), so each cache holds
 * a handful of entries. Bounded anyway (a client-chosen method could vary): past
 * {@link MAX_BOUND_SETS} entries a fresh object is answered and nothing is kept.
 */
import type { Attributes } from "@opentelemetry/api";

/** Entries kept per cache at most. */
export const MAX_BOUND_SETS = 512;

/** The empty attribute set (astra_active_connections). */
export const NO_ATTRIBUTES: Attributes = Object.freeze({});

function boundCache<A extends unknown[]>(key: (...args: A) => string, make: (...args: A) => Attributes): (...args: A) => Attributes {
  const cache = new Map<string, Attributes>();
  return (...args) => {
    const k = key(...args);
    let attributes = cache.get(k);
    if (attributes === undefined) {
      attributes = Object.freeze(make(...args));
      if (cache.size < MAX_BOUND_SETS) cache.set(k, attributes);
    }
    return attributes;
  };
}

/**
 * `{endpoint}` of the size and duration histograms.
 *
 * @example
 * instruments.httpRequestDuration.record(0.012, endpointAttributes("/api/v1/telemetry"));
 */
export const endpointAttributes = boundCache(
  (endpoint: string) => endpoint,
  (endpoint) => ({ endpoint }),
);

/** `{method, endpoint, status}` of astra_http_requests_total. */
export const requestAttributes = boundCache(
  (method: string, endpoint: string, status: number) => `${method} ${status} ${endpoint}`,
  (method, endpoint, status) => ({ method, endpoint, status: String(status) }),
);

/** `{error_type, endpoint}` of astra_errors_total. */
export const errorAttributes = boundCache(
  (errorType: string, endpoint: string) => `${errorType} ${endpoint}`,
  (errorType, endpoint) => ({ error_type: errorType, endpoint }),
);
