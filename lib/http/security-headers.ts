/**
 * Response headers for a JSON API, on every answer (errors, 404 and 405 included), through
 * `hono/secure-headers`:
 *
 * - `X-Content-Type-Options: nosniff`: JSON is never sniffed into HTML or script.
 * - `X-Frame-Options: DENY` and CSP `default-src 'none'; frame-ancestors 'none'`: nothing a
 *   browser renders from this origin may load anything or be framed (OWASP REST guidance).
 * - `Referrer-Policy: no-referrer`.
 * - `Strict-Transport-Security: max-age=31536000; includeSubDomains` (browsers ignore it over
 *   plain HTTP, so local dev is unaffected).
 * - `Cache-Control: no-store` unless the route set its own: answers carry live state and
 *   sometimes an operator's view; no shared cache should keep them.
 * - hono's other defaults (Cross-Origin-Resource-Policy same-origin, COOP, X-DNS-Prefetch-Control
 *   off, ...), and no `X-Powered-By`.
 */
import type { MiddlewareHandler } from "hono";
import { secureHeaders } from "hono/secure-headers";

/** Options of {@link apiSecurityHeaders}; every field has a default. */
export interface SecurityHeadersOptions {
  /** `Strict-Transport-Security` value. Default "max-age=31536000; includeSubDomains". */
  strictTransportSecurity?: string;
  /** `Cache-Control` set when the route set none. Default "no-store". */
  cacheControl?: string;
}

/**
 * Sets the API's security headers on every response.
 *
 * Defaults: HSTS one year with subdomains, `Cache-Control: no-store` where unset.
 *
 * @example
 * app.use("*", apiSecurityHeaders());
 * // every response: X-Content-Type-Options: nosniff, X-Frame-Options: DENY, Referrer-Policy: no-referrer, ...
 */
export function apiSecurityHeaders(options: SecurityHeadersOptions = {}): MiddlewareHandler {
  const cacheControl = options.cacheControl ?? "no-store";
  const headers = secureHeaders({
    strictTransportSecurity: options.strictTransportSecurity ?? "max-age=31536000; includeSubDomains",
    xFrameOptions: "DENY",
    referrerPolicy: "no-referrer",
    xContentTypeOptions: true,
    contentSecurityPolicy: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] },
  });

  return async function apiSecurityHeaders(c, next) {
    await headers(c, next);
    if (!c.res.headers.has("Cache-Control")) c.res.headers.set("Cache-Control", cacheControl);
  };
}
