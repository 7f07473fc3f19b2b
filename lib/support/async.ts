/** Small promise helpers shared by the flush, the chaos view and the retries. */

/**
 * Time and timers, as the helpers below and their callers use them: the runtime's by default
 * ({@link systemClock}); a test passes a manual one, so no wait or timeout depends on how fast
 * the machine running it is.
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Calls `fn` once, `ms` milliseconds from now; answers a handle for {@link Clock.clearTimeout}. */
  setTimeout(fn: () => void, ms: number): unknown;
  /** Cancels a timer of {@link Clock.setTimeout} that has not fired (a no-op for one that has). */
  clearTimeout(handle: unknown): void;
}

/** The runtime's clock: `Date.now`, `setTimeout`, `clearTimeout`, looked up at each call. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/** Resolves after `ms` milliseconds (of `clock`, default the runtime's). */
export const sleep = (ms: number, clock: Clock = systemClock): Promise<void> => new Promise((resolve) => clock.setTimeout(resolve, ms));

/**
 * `promise`, or a rejection after `ms` milliseconds (of `clock`, default the runtime's), whichever
 * comes first; the timer is cleared either way (a pending timer would keep a Workers request alive).
 *
 * @example
 * const r = await withTimeout(stub.sync(id, states), 1000);
 */
export function withTimeout<T>(promise: Promise<T>, ms: number, clock: Clock = systemClock): Promise<T> {
  let timer: unknown;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      // The executor runs at once, so `timer` is set before anything can settle.
      timer = clock.setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clock.clearTimeout(timer));
}
