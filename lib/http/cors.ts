/**
 * CORS for browsers calling the API from other origins, through `hono/cors`. Closed by default:
 * only origins listed in the `CORS_ALLOW_ORIGINS` var (comma-separated, exact `scheme://host[:port]`,
 * or `*` for any) get `Access-Control-Allow-Origin`; other origins get no CORS headers, so the
 * browser keeps their scripts from reading answers. Non-browser clients are not affected by CORS.
 *
 * No credentials mode: the API authenticates with headers (`Authorization`, `X-API-Key`), never
 * cookies. Preflights of allowed origins are answered 204 here; an `OPTIONS` from anywhere else
 * goes on to routing (405/404 JSON), so the API answers nothing it did not mean to.
 */
import type { Context, MiddlewareHandler } from "hono";
import { cors } from "hono/cors";
import type { AppEnv } from "../env";

/** Options of {@link apiCors}; every field has a default. */
export interface ApiCorsOptions {
  /** Allowed origins of a request. Default: `env.CORS_ALLOW_ORIGINS`, comma-separated (empty: none). */
  origins?: (env: Env) => readonly string[];
  /** Methods a preflight allows. Default GET, POST, OPTIONS. */
  allowMethods?: string[];
  /** Request headers a preflight allows. Default Authorization, Content-Type, X-API-Key, traceparent, tracestate. */
  allowHeaders?: string[];
  /** Response headers scripts may read. Default Retry-After, WWW-Authenticate, X-Request-Id. */
  exposeHeaders?: string[];
  /** Seconds a browser may cache a preflight. Default 600. */
  maxAgeSeconds?: number;
}

const parsed = new Map<string, readonly string[]>();

/** `CORS_ALLOW_ORIGINS` → list of origins (trailing slashes dropped); memoised per raw value. */
export function parseOrigins(raw: string | undefined): readonly string[] {
  const key = raw ?? "";
  let list = parsed.get(key);
  if (!list) {
    list = key
      .split(",")
      .map((o) => o.trim().replace(/\/+$/, ""))
      .filter((o) => o.length > 0);
    if (parsed.size > 16) parsed.clear();
    parsed.set(key, list);
  }
  return list;
}

/**
 * The API's CORS policy. Allowed origins are read per request from the bindings, so changing the
 * var needs no code change.
 *
 * Defaults: origins from `CORS_ALLOW_ORIGINS` (none), methods GET/POST/OPTIONS, headers
 * Authorization/Content-Type/X-API-Key/traceparent/tracestate, exposing Retry-After/WWW-Authenticate/X-Request-Id,
 * preflight cached 600 s, no credentials.
 *
 * @example
 * // wrangler.toml: CORS_ALLOW_ORIGINS = "https://console.example.org"
 * app.use("*", apiCors());
 */
export function apiCors(options: ApiCorsOptions = {}): MiddlewareHandler<AppEnv> {
  const originsOf = options.origins ?? ((env: Env) => parseOrigins(env.CORS_ALLOW_ORIGINS));
  const allowedOrigin = (origin: string, c: Context<AppEnv>): string | null => {
    if (!origin) return null;
    const origins = originsOf(c.env);
    if (origins.includes(origin)) return origin;
    return origins.includes("*") ? "*" : null;
  };
  const handler = cors({
    origin: allowedOrigin,
    allowMethods: options.allowMethods ?? ["GET", "POST", "OPTIONS"],
    allowHeaders: options.allowHeaders ?? ["Authorization", "Content-Type", "X-API-Key", "traceparent", "tracestate"],
    exposeHeaders: options.exposeHeaders ?? ["Retry-After", "WWW-Authenticate", "X-Request-Id"],
    maxAge: options.maxAgeSeconds ?? 600,
    credentials: false,
  });

  return async function apiCors(c, next) {
    const origin = c.req.header("Origin") ?? "";
    if (!allowedOrigin(origin, c)) {
      // Not an allowed origin: no CORS headers at all, and no 204 preflight answer.
      await next();
      c.header("Vary", "Origin", { append: true });
      return;
    }
    return handler(c, next);
  };
}
