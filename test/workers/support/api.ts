/** Calls the Worker under test through its default export, as a client would. */
import { env } from "cloudflare:test";
import { exports } from "cloudflare:workers";

export interface CallOptions {
  body?: unknown;
  /** Raw body text, sent as is (for malformed JSON and the like). */
  raw?: string;
  token?: string;
  headers?: Record<string, string>;
}

export interface CallResult<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

export async function call<T = any>(method: string, path: string, options: CallOptions = {}): Promise<CallResult<T>> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.body !== undefined || options.raw !== undefined) headers["Content-Type"] ??= "application/json";
  if (options.token) headers.Authorization = `Bearer ${options.token}`;
  const body = options.raw ?? (options.body !== undefined ? JSON.stringify(options.body) : undefined);
  const res = await (exports as any).default.fetch(new Request(`http://astraguard.test${path}`, { method, headers, body }));
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // Left as text: the caller asserts it was JSON when it should be.
  }
  return { status: res.status, body: parsed as T, headers: res.headers };
}

export const adminToken = () => env.ADMIN_TOKEN!;
export const operatorToken = () => env.OPERATOR_TOKEN!;

export const nominalPoint = (over: Record<string, unknown> = {}) => ({ voltage: 28, temperature: 20, gyro: 0.1, current: 2, wheel_speed: 3000, ...over });
export const anomalousPoint = (over: Record<string, unknown> = {}) => ({ voltage: 2, temperature: 140, gyro: 0.1, ...over });

/**
 * Runs every satellite object's pending alarm now: what they recorded reaches the mission's fleet
 * index (in production within FLEET_DELIVERY_DELAY_MS), so a test reads fleet-wide views at once.
 */
export async function deliverToFleet(): Promise<void> {
  const { listDurableObjectIds, runDurableObjectAlarm } = await import("cloudflare:test");
  for (const id of await listDurableObjectIds(env.SATELLITE_STATE)) await runDurableObjectAlarm(env.SATELLITE_STATE.get(id));
}
