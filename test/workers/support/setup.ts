/** Each test starts from empty storage and cold isolate caches. */
import { reset } from "cloudflare:test";
import { afterEach } from "vitest";
import { historyCache, phaseCache } from "../../../lib/mission/mission-client";

afterEach(async () => {
  await reset();
  phaseCache.clear();
  historyCache.clear();
});
