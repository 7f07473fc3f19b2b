/**
 * Hono's generic argument for this app. The bindings type, `Env`, is global and generated from
 * wrangler.toml and .dev.vars.example by `npm run cf-typegen` (worker-configuration.d.ts).
 */
export interface AppEnv {
  Bindings: Env;
  Variables: {
    requestId: string;
    /** Set by the ingest key check: the accepted key's fingerprint, the rate limiter's key. */
    ingestClient?: string;
  };
}
