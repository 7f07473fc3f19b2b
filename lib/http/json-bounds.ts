/**
 * Structural bounds on a JSON body, checked on the raw text before anything parses it: nesting
 * depth and the length of every string (keys included). The byte size is bounded earlier by
 * `hono/body-limit` on each route; numbers must be finite and unknown fields are refused by the
 * strict zod schemas (lib/domain/schemas.ts), which run after this.
 *
 * Why scan rather than parse: `JSON.parse` of a small body nested thousands deep, or holding one
 * huge string, costs time and memory before any schema can say no. The scan is one pass over the
 * text, allocates nothing, and stops at the first bound crossed.
 *
 * Malformed JSON is not this middleware's concern: it passes through, and the validator answers
 * 400 `bad_request` naming "body".
 */
import type { MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { ApiError } from "./errors";

/** Options of {@link jsonBounds}; every field has a default. */
export interface JsonBoundsOptions {
  /** Deepest nesting of objects and arrays; the top-level value is depth 1. Default 8. */
  maxDepth?: number;
  /** Longest string (keys included), in UTF-16 code units of its raw JSON text. Default 1024. */
  maxStringLength?: number;
}

/** Where a body crossed a bound, or undefined when it is within both. */
export type BoundViolation = { kind: "depth"; limit: number } | { kind: "string"; limit: number };

/**
 * One pass over JSON text: the first bound it crosses. Escapes inside strings are skipped as pairs,
 * so `"\""` is one string; brackets inside strings are not nesting.
 */
export function scanJsonBounds(text: string, maxDepth: number, maxStringLength: number): BoundViolation | undefined {
  let depth = 0;
  let inString = false;
  let stringLength = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (inString) {
      if (ch === 0x5c /* \ */) {
        i++;
        stringLength += 2;
      } else if (ch === 0x22 /* " */) {
        inString = false;
        continue;
      } else {
        stringLength++;
      }
      if (stringLength > maxStringLength) return { kind: "string", limit: maxStringLength };
    } else if (ch === 0x22) {
      inString = true;
      stringLength = 0;
    } else if (ch === 0x7b /* { */ || ch === 0x5b /* [ */) {
      if (++depth > maxDepth) return { kind: "depth", limit: maxDepth };
    } else if (ch === 0x7d /* } */ || ch === 0x5d /* ] */) {
      depth--;
    }
  }
  return undefined;
}

/**
 * Refuses a JSON body nested deeper than `maxDepth` or holding a string longer than
 * `maxStringLength`: 422 `validation_failed` naming "body". Mount it after the body limit and
 * `requireJson()`, before the validator; the body text is cached, so the validator does not read
 * the stream again.
 *
 * Defaults: depth 8, strings 1024 code units.
 *
 * @example
 * telemetryRoutes.post("/", bodyLimit({ maxSize }), requireJson(), jsonBounds(), validate("json", schema), handler);
 * // [[[[[[[[[1]]]]]]]]] → 422 {"error":{"code":"validation_failed","field":"body","message":"body is nested deeper than 8 levels"}}
 */
export function jsonBounds(options: JsonBoundsOptions = {}): MiddlewareHandler {
  const maxDepth = options.maxDepth ?? 8;
  const maxStringLength = options.maxStringLength ?? 1024;

  return async function jsonBounds(c, next) {
    const violation = scanJsonBounds(await c.req.text(), maxDepth, maxStringLength);
    if (violation?.kind === "depth") {
      throw new ApiError(422, "validation_failed", `body is nested deeper than ${violation.limit} levels`, "body");
    }
    if (violation?.kind === "string") {
      throw new ApiError(422, "validation_failed", `body holds a string longer than ${violation.limit} characters`, "body");
    }
    await next();
  };
}

/** Options of {@link smallJsonBody}: the bounds of {@link jsonBounds} plus a byte limit. */
export interface SmallJsonBodyOptions extends JsonBoundsOptions {
  /** Largest body accepted, in bytes. Default 4096. */
  maxBytes?: number;
}

/**
 * For the small bodies of authenticated endpoints (phase change, feedback, chaos): a body limit
 * (413 `payload_too_large` naming "body") and then {@link jsonBounds}. Mount it after the scope
 * check, so no body is read before the caller is known.
 *
 * Defaults: 4096 bytes, depth 8, strings 1024 code units.
 *
 * @example
 * missionRoutes.post("/phase", requireScope("admin"), requireJson(), smallJsonBody(), validate("json", phaseChangeSchema), handler);
 */
export function smallJsonBody(options: SmallJsonBodyOptions = {}): MiddlewareHandler {
  const maxBytes = options.maxBytes ?? 4096;
  const limit = bodyLimit({
    maxSize: maxBytes,
    onError: () => {
      throw new ApiError(413, "payload_too_large", `request body must be at most ${maxBytes} bytes`, "body");
    },
  });
  const bounds = jsonBounds(options);

  return async function smallJsonBody(c, next) {
    await limit(c, async () => {
      await bounds(c, next);
    });
  };
}
