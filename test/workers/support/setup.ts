/** Each test starts from empty storage, cold isolate caches, closed breakers and no chaos faults. */
import { reset } from "cloudflare:test";
import { afterEach } from "vitest";
import { fleetView } from "../../../lib/mission/fleet";
import { historyCache, phaseCache } from "../../../lib/mission/mission-client";
import { resetBreakers } from "../../../lib/reliability/breakers";
import { resetChaosView } from "../../../lib/reliability/chaos";
import { resetFailureRuns } from "../../../lib/reliability/guard";

afterEach(async () => {
  await reset();
  phaseCache.clear();
  historyCache.clear();
  fleetView.clear();
  resetBreakers();
  resetChaosView();
  resetFailureRuns();
});
