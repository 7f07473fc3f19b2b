/**
 * Retries of idempotent work: exponential backoff with full jitter, bounded in attempts and in
 * total time. Only operations named in {@link IDEMPOTENT_OPERATIONS} can be retried — the type
 * system refuses the others (record, feedback, setPhase write and would be applied twice).
 *
 * Every attempt is counted in astra_retry_attempts_total {endpoint, outcome}: `success` (an
 * attempt that succeeded), `retry` (an attempt that failed and will be retried), `failure` (an
 * attempt that failed and ends the operation). So the dashboard's retry rate,
 * `outcome="retry"` over all, is the share of attempts that had to be repeated. An operation
 * that needed at least one retry records its whole duration in astra_retry_latency_seconds
 * {endpoint} and, when it finally succeeded, a `retry_succeeded` recovery action.
 *
 * @example
 * const phase = await retry("mission.getPhase", () => stub.getPhase(), { maxAttempts: 3 });
 */
import { safely } from "../support/safely";
import { sleep } from "../support/async";
import { instruments } from "../telemetry/instruments";
import { withSpan } from "../telemetry/spans";

/** Operations that only read, so running them twice is harmless: the closed set of `endpoint` labels. */
export const IDEMPOTENT_OPERATIONS = [
  "mission.sync",
  "mission.getPhase",
  "mission.history",
  "mission.stats",
  "mission.latest",
  "mission.ping",
  "mission.locate",
  "mission.fleet",
  "satellite.context",
  "satellite.history",
  "satellite.stats",
  "satellite.latest",
] as const;
export type IdempotentOperation = (typeof IDEMPOTENT_OPERATIONS)[number];

/** The closed set of `outcome` labels of astra_retry_attempts_total. */
export const RETRY_OUTCOMES = ["success", "retry", "failure"] as const;

/** Options of {@link retry}; every field has a default. */
export interface RetryOptions {
  /** Attempts at most, the first included. Default 3. */
  maxAttempts?: number;
  /** Backoff base: the cap of the n-th wait is `baseDelayMillis · 2^(n-1)`. Default 50. */
  baseDelayMillis?: number;
  /** Largest single wait. Default 1000. */
  maxDelayMillis?: number;
  /**
   * No wait is started that would end later than this after the first attempt began, so the whole
   * operation takes at most this plus one attempt. Default 2000.
   */
  maxTotalMillis?: number;
  /** Whether an error is worth another attempt. Default: every error. */
  isRetryable?: (error: unknown) => boolean;
  /** Waits (tests pass a fake). Default `setTimeout`. */
  sleep?: (millis: number) => Promise<void>;
  /** Uniform [0, 1) (tests pass a fixed one). Default `Math.random`. */
  random?: () => number;
  /** Clock. Default `Date.now`. */
  now?: () => number;
}

/** The defaults, settled once. */
export const RETRY_DEFAULTS = {
  maxAttempts: 3,
  baseDelayMillis: 50,
  maxDelayMillis: 1000,
  maxTotalMillis: 2000,
} as const;


/** The wait before attempt `attempt + 1` (attempt ≥ 1): full jitter, uniform in [0, cap). */
export function backoffDelay(attempt: number, random: () => number, baseDelayMillis: number, maxDelayMillis: number): number {
  const cap = Math.min(maxDelayMillis, baseDelayMillis * 2 ** Math.min(attempt - 1, 30));
  return Math.floor(random() * cap);
}


/**
 * Runs `fn` until it succeeds, an error is not retryable, `maxAttempts` were made, or the next
 * wait would pass `maxTotalMillis`; then resolves with its result or rejects with its last error.
 * Each attempt runs in a `retry_attempt` span.
 */
export async function retry<T>(operation: IdempotentOperation, fn: (attempt: number) => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const maxAttempts = Math.max(1, Math.floor(options.maxAttempts ?? RETRY_DEFAULTS.maxAttempts));
  const baseDelayMillis = Math.max(0, options.baseDelayMillis ?? RETRY_DEFAULTS.baseDelayMillis);
  const maxDelayMillis = Math.max(0, options.maxDelayMillis ?? RETRY_DEFAULTS.maxDelayMillis);
  const maxTotalMillis = Math.max(0, options.maxTotalMillis ?? RETRY_DEFAULTS.maxTotalMillis);
  const isRetryable = options.isRetryable ?? (() => true);
  const wait = options.sleep ?? sleep;
  const random = options.random ?? Math.random;
  const now = options.now ?? Date.now;
  const endpoint = operation;
  const started = now();

  for (let attempt = 1; ; attempt++) {
    try {
      const result = await withSpan("retry_attempt", { "retry.operation": operation, "retry.attempt": attempt }, () => fn(attempt));
      safely(() => instruments.retryAttempts.add(1, { endpoint, outcome: "success" }));
      if (attempt > 1) {
        safely(() => instruments.retryLatency.record((now() - started) / 1000, { endpoint }));
        safely(() => instruments.recoveryActions.add(1, { action_type: "retry_succeeded", status: "success" }));
      }
      return result;
    } catch (err) {
      const delay = backoffDelay(attempt, random, baseDelayMillis, maxDelayMillis);
      const again = attempt < maxAttempts && isRetryable(err) && now() - started + delay <= maxTotalMillis;
      safely(() => instruments.retryAttempts.add(1, { endpoint, outcome: again ? "retry" : "failure" }));
      if (!again) {
        if (attempt > 1) safely(() => instruments.retryLatency.record((now() - started) / 1000, { endpoint }));
        throw err;
      }
      await wait(delay);
    }
  }
}
