import { describe, expect, it } from "vitest";
import { detect, type Reading } from "../../../lib/domain/detector";

const base: Reading = { voltage: 28, temperature: 20, gyro: 0.1, current: 2, wheel_speed: 3000, time: 1_000_000 };
const at = (seconds: number, over: Partial<Reading> = {}): Reading => ({ ...base, time: base.time + seconds * 1000, ...over });

describe("detect", () => {
  it("finds nothing in a nominal reading", () => {
    const d = detect(base, []);
    expect(d).toMatchObject({ isAnomaly: false, score: 0, type: "NONE", findings: [] });
  });

  it.each([
    [{ voltage: 12 }, "POWER_UNDERVOLTAGE"],
    [{ voltage: 45 }, "POWER_OVERVOLTAGE"],
    [{ temperature: 120 }, "THERMAL_HIGH"],
    [{ temperature: -80 }, "THERMAL_LOW"],
    [{ gyro: 9 }, "ATTITUDE_RATE"],
    [{ current: 11 }, "POWER_OVERCURRENT"],
    [{ wheel_speed: 9500 }, "WHEEL_OVERSPEED"],
  ] as const)("flags %o as %s with a reason", (over, type) => {
    const d = detect({ ...base, ...over }, []);
    expect(d.isAnomaly).toBe(true);
    expect(d.type).toBe(type);
    expect(d.score).toBeGreaterThanOrEqual(0.5);
    expect(d.findings[0]!.reason).toMatch(/nominal/);
  });

  it("scores further from the band higher, capped at 1", () => {
    const near = detect({ ...base, voltage: 23 }, []).score;
    const far = detect({ ...base, voltage: 10 }, []).score;
    const off = detect({ ...base, voltage: 0 }, []).score;
    expect(near).toBeLessThan(far);
    expect(far).toBeLessThanOrEqual(off);
    expect(off).toBe(1);
  });

  it("flags a jump against the previous reading of the same source", () => {
    const d = detect(at(1, { voltage: 31 }), [at(0, { voltage: 25 })]);
    expect(d.type).toBe("RATE_OF_CHANGE");
    expect(d.findings[0]!.reason).toMatch(/voltage changed 6\/s/);
  });

  it("accepts the same change spread over a long time", () => {
    expect(detect(at(60, { voltage: 31 }), [at(0, { voltage: 25 })]).isAnomaly).toBe(false);
  });

  it("flags a stuck sensor only while other sensors move", () => {
    const history = [0, 1, 2, 3].map((s) => at(s, { temperature: 20 + s * 0.3 }));
    const stuck = detect(at(4, { temperature: 21.5 }), history.map((r) => ({ ...r, voltage: 28 })));
    expect(stuck.findings.some((f) => f.type === "SENSOR_STUCK" && f.field === "voltage")).toBe(true);
    const allStill = detect(at(4), [0, 1, 2, 3].map((s) => at(s)));
    expect(allStill.findings).toEqual([]);
  });

  it("flags a steady drift larger than the window allows", () => {
    const history = [0, 1, 2, 3, 4].map((s) => at(s * 30, { temperature: 20 + s * 4 }));
    const d = detect(at(150, { temperature: 40 }), history);
    expect(d.findings.some((f) => f.type === "DRIFT" && f.field === "temperature")).toBe(true);
  });

  it("is more confident with more fields and more history", () => {
    const bare = detect({ voltage: 28, temperature: 20, gyro: 0, time: 0 }, []).confidence;
    const rich = detect(at(10), [at(0), at(5)]).confidence;
    expect(rich).toBeGreaterThan(bare);
    expect(rich).toBeLessThanOrEqual(1);
  });
});
