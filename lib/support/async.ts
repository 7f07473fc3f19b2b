/** Small promise helpers shared by the flush, the chaos view and the retries. */

/** Resolves after `ms` milliseconds. */
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * `promise`, or a rejection after `ms` milliseconds, whichever comes first; the timer is cleared
 * either way (a pending timer would keep a Workers request alive).
 *
 * @example
 * const r = await withTimeout(stub.sync(id, states), 1000);
 */
export function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => {
    if (timer !== undefined) clearTimeout(timer);
  });
}
