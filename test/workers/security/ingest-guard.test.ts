/**
 * Ingest guards: the API key (REQUIRE_INGEST_KEY / INGEST_API_KEYS, header X-API-Key) and the
 * rate limit (INGEST_RATE_LIMITER), both before the body is read; rejected requests change nothing.
 */
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { keyFingerprint, parseKeyList } from "../../../lib/http/ingest-key";
import { call, nominalPoint } from "../support/api";
import { callWith, captureConsole, stateSnapshot } from "./support";

const KEYS = "first-ingest-key-0123456789, second-ingest-key-abcdef ,";
const keyed: Partial<Env> = { REQUIRE_INGEST_KEY: "true", INGEST_API_KEYS: KEYS };
const INGEST = ["/api/v1/telemetry", "/api/v1/telemetry/batch"] as const;
const bodyFor = (path: string) => (path.endsWith("/batch") ? { telemetry: [nominalPoint()] } : nominalPoint());

/** A rate limiter that answers as told and records the keys it was asked about. */
function fakeLimiter(answer: () => Promise<{ success: boolean }>) {
  const keys: string[] = [];
  const limiter = { limit: async ({ key }: { key: string }) => (keys.push(key), answer()) } as unknown as RateLimit;
  return { limiter, keys };
}

describe("ingest API key", () => {
  it("parses INGEST_API_KEYS as a trimmed comma list without empties", () => {
    expect(parseKeyList(KEYS)).toEqual(["first-ingest-key-0123456789", "second-ingest-key-abcdef"]);
    expect(parseKeyList(undefined)).toEqual([]);
    expect(parseKeyList(" , ")).toEqual([]);
  });

  it("is not asked for while REQUIRE_INGEST_KEY is not \"true\" (the local default)", async () => {
    expect(env.REQUIRE_INGEST_KEY).not.toBe("true");
    for (const path of INGEST) expect((await call("POST", path, { body: bodyFor(path) })).status).toBe(200);
    expect((await callWith({ REQUIRE_INGEST_KEY: "TRUE ", INGEST_API_KEYS: KEYS }, "POST", INGEST[0], { body: nominalPoint() })).status).toBe(200);
  });

  it.each(INGEST)("%s: 401 naming X-API-Key without a key, with a wrong one, or with it as a bearer token; state unchanged", async (path) => {
    const before = await stateSnapshot();
    const attempts: Array<Record<string, string>> = [
      {},
      { "X-API-Key": "" },
      { "X-API-Key": "first-ingest-key-012345678" },
      { "X-API-Key": "first-ingest-key-0123456789x" },
      { "X-API-Key": "x".repeat(5000) },
      { Authorization: "Bearer first-ingest-key-0123456789" },
      { "X-API-Key": "first-ingest-key-0123456789,second-ingest-key-abcdef" },
    ];
    for (const headers of attempts) {
      const res = await callWith(keyed, "POST", path, { body: bodyFor(path), headers });
      expect(res.status, JSON.stringify(headers).slice(0, 80)).toBe(401);
      expect(res.headers.get("Content-Type")).toMatch(/application\/json/);
      expect(res.body.error).toMatchObject({ status: 401, code: "unauthorized", field: "X-API-Key" });
    }
    expect(await stateSnapshot()).toEqual(before);
  });

  it.each(INGEST)("%s: accepts every configured key", async (path) => {
    for (const key of parseKeyList(KEYS)) {
      const res = await callWith(keyed, "POST", path, { body: bodyFor(path), headers: { "X-API-Key": key } });
      expect(res.status).toBe(200);
    }
  });

  it("is checked before the body is parsed: a malformed body without a key is 401, not 400", async () => {
    const res = await callWith(keyed, "POST", INGEST[0], { raw: '{"voltage": 28,' });
    expect(res.status).toBe(401);
    const withKey = await callWith(keyed, "POST", INGEST[0], { raw: '{"voltage": 28,', headers: { "X-API-Key": "second-ingest-key-abcdef" } });
    expect(withKey.status).toBe(400);
  });

  it("fails closed when keys are required but none are configured, logging the misconfiguration", async () => {
    const { result, lines } = await captureConsole(() =>
      callWith({ REQUIRE_INGEST_KEY: "true", INGEST_API_KEYS: " , " }, "POST", INGEST[0], { body: nominalPoint(), headers: { "X-API-Key": "anything" } }),
    );
    expect(result.status).toBe(401);
    expect(lines.some((l) => l.includes("ingest_keys_missing"))).toBe(true);
  });

  it("logs failed attempts without the presented key or the configured ones", async () => {
    const presented = "attacker-guess-7f3a9c1e55";
    const { lines } = await captureConsole(async () => {
      await callWith(keyed, "POST", INGEST[0], { body: nominalPoint(), headers: { "X-API-Key": presented } });
      await callWith(keyed, "POST", INGEST[1], { body: { telemetry: [nominalPoint()] } });
    });
    const failures = lines.filter((l) => l.includes("ingest_key_failed"));
    expect(failures).toHaveLength(2);
    for (const line of lines) {
      expect(line).not.toContain(presented);
      for (const key of parseKeyList(KEYS)) expect(line).not.toContain(key);
    }
  });
});

describe("ingest rate limit", () => {
  it.each(INGEST)("%s: over the limit answers 429 JSON with Retry-After, before parsing, state unchanged", async (path) => {
    const { limiter } = fakeLimiter(async () => ({ success: false }));
    const before = await stateSnapshot();
    for (const options of [{ body: bodyFor(path) }, { raw: "{not json" }]) {
      const res = await callWith({ INGEST_RATE_LIMITER: limiter }, "POST", path, options);
      expect(res.status).toBe(429);
      expect(res.headers.get("Retry-After")).toBe("60");
      expect(res.headers.get("Content-Type")).toMatch(/application\/json/);
      expect(res.body.error).toMatchObject({ status: 429, code: "rate_limited", message: expect.stringContaining("retry after 60") });
    }
    expect(await stateSnapshot()).toEqual(before);
  });

  it("counts by client IP, and by the verified key's fingerprint when keys are required", async () => {
    const { limiter, keys } = fakeLimiter(async () => ({ success: true }));
    const headers = { "CF-Connecting-IP": "203.0.113.7", "X-API-Key": "second-ingest-key-abcdef" };
    await callWith({ INGEST_RATE_LIMITER: limiter }, "POST", INGEST[0], { body: nominalPoint(), headers });
    await callWith({ INGEST_RATE_LIMITER: limiter, ...keyed }, "POST", INGEST[1], { body: { telemetry: [nominalPoint()] }, headers });
    await callWith({ INGEST_RATE_LIMITER: limiter }, "POST", INGEST[0], { body: nominalPoint() });
    await callWith({ INGEST_RATE_LIMITER: limiter }, "POST", INGEST[0], { body: nominalPoint(), headers: { "CF-Connecting-IP": "1".repeat(200) } });
    // An unverified key (keys not required) is not the key: made-up keys cannot dodge the limit.
    expect(keys).toEqual(["ip:203.0.113.7", await keyFingerprint("second-ingest-key-abcdef"), "ip:unknown", "ip:unknown"]);
    expect(keys[1]).toMatch(/^key:[0-9a-f]{16}$/);
    expect(keys.join(" ")).not.toContain("second-ingest-key");
  });

  it("is not consulted for requests the key check refused", async () => {
    const { limiter, keys } = fakeLimiter(async () => ({ success: true }));
    expect((await callWith({ INGEST_RATE_LIMITER: limiter, ...keyed }, "POST", INGEST[0], { body: nominalPoint() })).status).toBe(401);
    expect(keys).toEqual([]);
  });

  it("fails open, logged, when the binding is missing, throws, or does not answer in time", async () => {
    const throwing = fakeLimiter(async () => {
      throw new Error("limiter exploded");
    }).limiter;
    const hanging = fakeLimiter(() => new Promise(() => {})).limiter;
    const { result, lines } = await captureConsole(async () => [
      await callWith({ INGEST_RATE_LIMITER: undefined }, "POST", INGEST[0], { body: nominalPoint() }),
      await callWith({ INGEST_RATE_LIMITER: throwing }, "POST", INGEST[0], { body: nominalPoint() }),
      await callWith({ INGEST_RATE_LIMITER: hanging }, "POST", INGEST[1], { body: { telemetry: [nominalPoint()] } }),
    ]);
    expect(result.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(lines.filter((l) => l.includes("rate_limiter_failed"))).toHaveLength(2);
    expect(lines.some((l) => l.includes("limiter exploded"))).toBe(true);
  });

  it("uses the real INGEST_RATE_LIMITER binding (Miniflare): 600 per 60 s per client, then 429", async () => {
    expect(env.INGEST_RATE_LIMITER).toBeDefined();
    const ip = `198.51.100.${Math.floor(Math.random() * 250) + 1}`;
    // text/plain bodies pass the limiter and stop at the media-type check: cheap requests.
    const send = (from: string) => call("POST", INGEST[0], { raw: "x", headers: { "Content-Type": "text/plain", "CF-Connecting-IP": from } });
    let first429 = -1;
    const other: number[] = [];
    // Windows are aligned to the clock: if one rolls over mid-run, the 429 comes within 2 x 600.
    // The console is captured: 600 request log lines would drown the report.
    await captureConsole(async () => {
      for (let i = 0; i < 1201 && first429 < 0; i++) {
        const res = await send(ip);
        if (res.status === 429) {
          first429 = i;
          expect(res.headers.get("Retry-After")).toBe("60");
        } else if (res.status !== 415) {
          other.push(res.status);
        }
      }
    });
    expect(other).toEqual([]);
    expect(first429).toBeGreaterThanOrEqual(600);
    expect((await send(ip)).status).toBe(429);
    expect((await send("192.0.2.99")).status).toBe(415);
  }, 60_000);
});
