/** Helpers of the reliability tests. */
import { afterEach, beforeEach, vi } from "vitest";
import { setChaosClock } from "../../../lib/reliability/chaos";

/**
 * For every test of the calling file: Date is faked (only `Date.now` and `new Date`) from a minute
 * in the past, and the chaos view's timers never fire, so no breaker cool-down or slow-call
 * limit, no retry budget and no ChaosControl timeout depends on how fast the machine is.
 */
export function freezeChaosClock(): void {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ["Date"], now: Date.now() - 60_000 });
    setChaosClock({ now: () => Date.now(), setTimeout: () => 0, clearTimeout: () => {} });
  });
  afterEach(() => {
    vi.useRealTimers();
    setChaosClock();
  });
}
