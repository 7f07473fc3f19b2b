/**
 * Ingest rate limiting with Cloudflare's rate-limiting binding (`[[ratelimits]]` in wrangler.toml,
 * `INGEST_RATE_LIMITER`: 600 requests per 60 s per key as shipped). A request over the limit is
 * answered 429 with `Retry-After`, before its body is read.
 *
 * The key is the client: the accepted ingest key's fingerprint (set by ./ingest-key.ts) when keys
 * are required, else `ip:<CF-Connecting-IP>`. An unverified `X-API-Key` is never used as the key,
 * so rotating made-up keys cannot dodge the limit. Without either (local tools that bypass
 * Cloudflare's edge) every such request shares the key `ip:unknown`.
 *
 * Fail open: the limiter protects capacity, it is not an access control. A missing binding, a
 * binding that throws, or one that does not answer within `timeoutMillis` lets the request through,
 * logged (a missing binding once per isolate).
 */
import type { Context, MiddlewareHandler } from "hono";
import type { AppEnv } from "../env";
import { log as logLine, type LogFields } from "../telemetry/logger";
import { ApiError, errorResponse } from "./errors";

/** Options of {@link ingestRateLimit}; every field has a default. */
export interface RateLimitOptions {
  /** The limiter of a request. Default: `env.INGEST_RATE_LIMITER`. */
  binding?: (env: Env) => RateLimit | undefined;
  /** The key a request is counted under. Default: {@link clientKey}. */
  key?: (c: Context<AppEnv>) => string;
  /** `Retry-After` seconds of a 429: the binding's period. Default 60. */
  retryAfterSeconds?: number;
  /** A limiter answer slower than this lets the request through. Default 1000 ms. */
  timeoutMillis?: number;
}

/** The rate-limit key of a request: the verified ingest key's fingerprint, else the client IP. */
export function clientKey(c: Context<AppEnv>): string {
  const verified = c.get("ingestClient");
  if (verified) return verified;
  const ip = c.req.header("CF-Connecting-IP")?.trim();
  // An IP is at most 45 characters; anything longer is not one a Cloudflare edge would set.
  return ip && ip.length <= 45 ? `ip:${ip}` : "ip:unknown";
}

let missingLogged = false;

function log(event: string, c: Context<AppEnv>, extra: LogFields = {}): void {
  logLine("warn", event, { route: c.req.routePath, request_id: c.get("requestId"), ...extra });
}

/**
 * Counts each request against the rate-limiting binding and answers 429 `rate_limited` with
 * `Retry-After` once the client is over its limit.
 *
 * Defaults: binding `env.INGEST_RATE_LIMITER`, key {@link clientKey}, Retry-After 60 s, limiter
 * timeout 1000 ms; fails open.
 *
 * @example
 * telemetryRoutes.post("/batch", bodyLimit(...), ingestKey(), ingestRateLimit(), handler);
 * // over the limit: HTTP 429, Retry-After: 60, {"error":{"status":429,"code":"rate_limited",...}}
 */
export function ingestRateLimit(options: RateLimitOptions = {}): MiddlewareHandler<AppEnv> {
  const bindingOf = options.binding ?? ((env: Env) => env.INGEST_RATE_LIMITER);
  const keyOf = options.key ?? clientKey;
  const retryAfterSeconds = options.retryAfterSeconds ?? 60;
  const timeoutMillis = options.timeoutMillis ?? 1000;

  return async function ingestRateLimit(c, next) {
    const limiter = bindingOf(c.env);
    if (!limiter) {
      if (!missingLogged) log("rate_limiter_missing", c, { reason: "no INGEST_RATE_LIMITER binding: ingest is not rate limited" });
      missingLogged = true;
      return next();
    }
    let success = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMillis} ms`)), timeoutMillis);
      });
      const outcome = await Promise.race([limiter.limit({ key: keyOf(c) }), deadline]);
      success = outcome?.success !== false;
    } catch (err) {
      log("rate_limiter_failed", c, { error_type: err instanceof Error ? err.name : typeof err, error_message: String(err instanceof Error ? err.message : err).slice(0, 200) });
    } finally {
      if (timer !== undefined) clearTimeout(timer);
    }
    if (success) return next();
    c.header("Retry-After", String(retryAfterSeconds));
    return errorResponse(c, new ApiError(429, "rate_limited", `too many ingest requests; retry after ${retryAfterSeconds} s`));
  };
}
