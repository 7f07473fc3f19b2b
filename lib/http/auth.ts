/**
 * Bearer-token scopes for admin and operator endpoints. Tokens are Worker secrets, compared in
 * constant time; a failed attempt is logged without the token.
 */
import type { MiddlewareHandler } from "hono";
import { timingSafeEqual } from "hono/utils/buffer";
import type { AppEnv } from "../env";
import { ApiError } from "./errors";
import { log as logEvent } from "../telemetry/logger";

export type Scope = "admin" | "operator" | "read";

/** Which secrets grant which scope: the admin token also grants operator work; any token grants reads. */
const SCOPE_TOKENS: Record<Scope, Array<keyof Env>> = {
  admin: ["ADMIN_TOKEN"],
  operator: ["OPERATOR_TOKEN", "ADMIN_TOKEN"],
  read: ["READ_TOKEN", "OPERATOR_TOKEN", "ADMIN_TOKEN"],
};

async function matches(presented: string, secret: string | undefined): Promise<boolean> {
  return secret !== undefined && secret.length > 0 && (await timingSafeEqual(presented, secret));
}

/**
 * Requires `Authorization: Bearer <token>` granting `scope`: 401 without a valid token, 403 when the
 * token is valid but for a narrower scope.
 * @example app.post("/api/v1/phase", requireScope("admin"), handler)
 */
export function requireScope(scope: Scope): MiddlewareHandler<AppEnv> {
  return async function requireScope(c, next) {
    const header = c.req.header("Authorization") ?? "";
    const match = /^Bearer\s+(\S{1,512})$/i.exec(header);
    const log = (outcome: string) => logEvent("warn", "auth_failed", { outcome, scope, route: c.req.routePath, request_id: c.get("requestId") });
    // RFC 6750 §3: the challenge of a refused bearer request (no error code when none was presented).
    const challenge = (error?: string) =>
      c.header("WWW-Authenticate", `Bearer realm="astraguard-edge", scope="${scope}"${error ? `, error="${error}"` : ""}`);
    if (!match) {
      log("missing_token");
      challenge();
      throw new ApiError(401, "unauthorized", `this endpoint needs ${scope === "read" ? "a" : "an"} ${scope} token: Authorization: Bearer <token>`, "Authorization");
    }
    const token = match[1]!;
    for (const name of SCOPE_TOKENS[scope]) {
      if (await matches(token, c.env[name] as string | undefined)) return next();
    }
    const anyScope = (Object.keys(SCOPE_TOKENS) as Scope[]).flatMap((s) => SCOPE_TOKENS[s]);
    for (const name of new Set(anyScope)) {
      if (await matches(token, c.env[name] as string | undefined)) {
        log("insufficient_scope");
        challenge("insufficient_scope");
        throw new ApiError(403, "forbidden", `this token does not grant the ${scope} scope`, "Authorization");
      }
    }
    log("invalid_token");
    challenge("invalid_token");
    throw new ApiError(401, "unauthorized", "invalid token", "Authorization");
  };
}
