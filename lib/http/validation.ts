/**
 * Request validation through Hono's validator with zod: every failure becomes an ApiError that
 * names the field (dotted path, e.g. "telemetry.3.voltage") and says what was expected.
 */
import { zValidator } from "@hono/zod-validator";
import type { MiddlewareHandler, ValidationTargets } from "hono";
import type { z } from "zod";
import { ApiError } from "./errors";

const JSON_MEDIA_TYPE = /^application\/([\w.-]+\+)?json$/i;

/** Turns zod issues into the API's error: the first issue leads, all are listed in `details`. */
export function validationError(error: z.core.$ZodError, target: keyof ValidationTargets): ApiError {
  const root = target === "json" ? "body" : target;
  const details = error.issues.map((issue) => {
    const field = issue.path.length > 0 ? issue.path.map(String).join(".") : root;
    if (issue.code === "unrecognized_keys") {
      const keys = issue.keys.map((k) => (issue.path.length > 0 ? `${field}.${k}` : k));
      return { field: keys[0] ?? field, message: `unknown field(s): ${keys.join(", ")}` };
    }
    if (issue.code === "invalid_type" && issue.path.length === 0) {
      return { field, message: `${root} must be a JSON object` };
    }
    return { field, message: issue.message };
  });
  const first = details[0] ?? { field: root, message: "invalid input" };
  return new ApiError(422, "validation_failed", first.message, first.field, details);
}

/** Hono's zod validator with the API's error shape. */
export function validate<T extends z.ZodType, Target extends keyof ValidationTargets>(target: Target, schema: T) {
  return zValidator(target, schema, (result) => {
    if (!result.success) throw validationError(result.error, target);
  });
}

/** Refuses bodies that do not say they are JSON: the validator would otherwise see `{}`. */
export function requireJson(): MiddlewareHandler {
  return async function requireJson(c, next) {
    const mediaType = (c.req.header("Content-Type") ?? "").split(";")[0]!.trim();
    if (!JSON_MEDIA_TYPE.test(mediaType)) {
      throw new ApiError(415, "unsupported_media_type", "request body must be JSON (Content-Type: application/json)", "Content-Type");
    }
    await next();
  };
}
