/**
 * Ingest API keys: telemetry producers present `X-API-Key: <key>` when the deployment asks for it
 * (`REQUIRE_INGEST_KEY = "true"`). Keys live in the `INGEST_API_KEYS` secret, comma-separated, and
 * are compared in constant time against every configured key (no early exit, so timing does not
 * tell which key or how much of it matched). A failed attempt is logged without the key.
 *
 * The header is `X-API-Key`, not `Authorization`: `Authorization: Bearer` carries the admin and
 * operator scope tokens (./auth.ts), and keeping the two apart means an ingest key can never be
 * mistaken for a scope token or the other way round.
 *
 * An accepted key sets the request variable `ingestClient` to `key:<first 16 hex of its SHA-256>`,
 * which the rate limiter (./rate-limit.ts) uses as its key; the key itself is never stored or logged.
 */
import type { Context, MiddlewareHandler } from "hono";
import { timingSafeEqual } from "hono/utils/buffer";
import type { AppEnv } from "../env";
import { log } from "../telemetry/logger";
import { ApiError } from "./errors";

/** Options of {@link ingestKey}; every field has a default. */
export interface IngestKeyOptions {
  /** Request header holding the key. Default "X-API-Key". */
  header?: string;
  /** Whether a key is required for this request. Default: `env.REQUIRE_INGEST_KEY === "true"`. */
  required?: (env: Env) => boolean;
  /** The accepted keys. Default: `env.INGEST_API_KEYS` split on commas, trimmed, empties dropped. */
  keys?: (env: Env) => readonly string[];
  /** Longest key accepted; longer values are refused unhashed. Default 256. */
  maxKeyLength?: number;
}

/** `INGEST_API_KEYS` → list of keys: comma-separated, whitespace trimmed, empty entries dropped. */
export function parseKeyList(raw: string | undefined): string[] {
  return (raw ?? "")
    .split(",")
    .map((k) => k.trim())
    .filter((k) => k.length > 0);
}

/** `key:` + the first 16 hex digits of SHA-256(key): names a client without revealing its key. */
export async function keyFingerprint(key: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(key));
  const hex = [...new Uint8Array(digest).slice(0, 8)].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `key:${hex}`;
}

/**
 * Requires a valid ingest API key when the deployment asks for one; passes every request through
 * untouched when it does not. 401 `unauthorized` (field = the header) when the key is missing or
 * unknown. With `REQUIRE_INGEST_KEY = "true"` and no keys configured, every request is refused
 * (fail closed) and the misconfiguration is logged as an error.
 *
 * Defaults: header "X-API-Key", required when `REQUIRE_INGEST_KEY === "true"`, keys from
 * `INGEST_API_KEYS`, keys up to 256 characters.
 *
 * @example
 * telemetryRoutes.post("/", ingestKey(), ingestRateLimit(), handler);
 * // curl -H "X-API-Key: $KEY" -H "Content-Type: application/json" -d @point.json .../api/v1/telemetry
 */
export function ingestKey(options: IngestKeyOptions = {}): MiddlewareHandler<AppEnv> {
  const header = options.header ?? "X-API-Key";
  const required = options.required ?? ((env: Env) => env.REQUIRE_INGEST_KEY === "true");
  const keysOf = options.keys ?? ((env: Env) => parseKeyList(env.INGEST_API_KEYS));
  const maxKeyLength = options.maxKeyLength ?? 256;

  const refuse = (c: Context<AppEnv>, outcome: string, message: string): never => {
    log("warn", "ingest_key_failed", { outcome, route: c.req.routePath, request_id: c.get("requestId") });
    throw new ApiError(401, "unauthorized", message, header);
  };

  return async function ingestKey(c, next) {
    if (!required(c.env)) return next();
    const presented = c.req.header(header)?.trim() ?? "";
    if (presented.length === 0) refuse(c, "missing_key", `this endpoint needs an ingest API key: ${header}: <key>`);
    if (presented.length > maxKeyLength) refuse(c, "invalid_key", "invalid API key");
    const keys = keysOf(c.env);
    if (keys.length === 0) {
      log("error", "ingest_keys_missing", { reason: "REQUIRE_INGEST_KEY is true but INGEST_API_KEYS holds no key", request_id: c.get("requestId") });
    }
    let matched = false;
    for (const key of keys) {
      // Every key is compared, even after a match: the time taken does not depend on which matched.
      if (await timingSafeEqual(presented, key)) matched = true;
    }
    if (!matched) refuse(c, "invalid_key", "invalid API key");
    c.set("ingestClient", await keyFingerprint(presented));
    return next();
  };
}
