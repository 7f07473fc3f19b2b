import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { FleetView, UNKNOWN_ID_RESYNC_MS } from "../../../lib/mission/fleet";

/** A clock that moves only when the test says so. */
function manualClock(start = 1_000_000) {
  let now = start;
  return { now: () => now, setTimeout: () => undefined, clearTimeout: () => undefined, advance: (ms: number) => void (now += ms) };
}

describe("FleetView.isRegistered", () => {
  it("asks the mission about an unknown id at most once per UNKNOWN_ID_RESYNC_MS, and sees a registration after it", async () => {
    const clock = manualClock();
    const view = new FleetView(clock);
    const mission = env.MISSION_STATE.get(env.MISSION_STATE.idFromName("mission"));
    const syncs = async () => ((await mission.stats()).calls_since_start.sync ?? 0);
    const before = await syncs();
    expect(await view.isRegistered(env, "late-sat")).toBe(false);
    // Registered elsewhere (another isolate's admin call) right after.
    await mission.register(["late-sat"], 10);
    clock.advance(UNKNOWN_ID_RESYNC_MS - 1);
    for (let i = 0; i < 20; i++) expect(await view.isRegistered(env, `random-${i}`)).toBe(false);
    expect(await view.isRegistered(env, "late-sat")).toBe(false);
    expect((await syncs()) - before).toBe(1);
    clock.advance(1);
    expect(await view.isRegistered(env, "late-sat")).toBe(true);
    expect((await syncs()) - before).toBe(2);
  });
});
