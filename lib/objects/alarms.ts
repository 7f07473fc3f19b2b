/**
 * Alarm scheduling shared by our Durable Objects: one alarm per object, the earliest wanted time
 * wins, and work that has been quiet for a whole interval runs at once.
 */

/**
 * Sets the object's alarm to `at` unless one is already set for an earlier time.
 * @example await alarmNoLaterThan(this.ctx.storage, Date.now() + 1000);
 */
export async function alarmNoLaterThan(storage: DurableObjectStorage, at: number): Promise<void> {
  const current = await storage.getAlarm();
  if (current === null || current > at) await storage.setAlarm(at);
}

/**
 * When rate-limited work should next run: at once when the last run is a whole `intervalMillis`
 * ago (a quiet object adds no delay), else one interval after it (≤ 1 run per interval under
 * load). Before any run (`last` undefined) it waits the interval.
 * @example nextAfterQuiet(undefined, 10_000, 500) // 10_500
 */
export function nextAfterQuiet(last: number | undefined, now: number, intervalMillis: number): number {
  return last === undefined ? now + intervalMillis : Math.max(now, last + intervalMillis);
}
