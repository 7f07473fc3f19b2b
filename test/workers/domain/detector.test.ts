import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { detect, freshState, DETECTOR_STATE_VERSION, type DetectorState, type Reading } from "../../../lib/domain/detector";

const base: Reading = { voltage: 28, temperature: 20, gyro: 0.1, current: 2, wheel_speed: 3000, time: 1_000_000 };
const at = (seconds: number, over: Partial<Reading> = {}): Reading => ({ ...base, time: base.time + seconds * 1000, ...over });

/** Deterministic Gaussian noise (LCG + Box-Muller), so "nominal noise" tests are repeatable. */
function noise(seed: number): (sd: number) => number {
  let s = seed >>> 0;
  const uniform = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 0.5) / 4294967296;
  return (sd) => sd * Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
}

/** Runs readings through detect in order, threading the state; returns each detection and the state after each. */
function run(readings: readonly Reading[], state?: DetectorState) {
  const out = [];
  const states: DetectorState[] = [];
  for (const r of readings) {
    const result = detect(r, state);
    state = result.state;
    out.push(result.detection);
    states.push(result.state);
  }
  return { detections: out, state, states };
}

/** A nominal stream, one reading every 20 s: the bus at rest, with the simulator's sensor noise. */
function nominal(points: number, seed = 1, from = 0, over: (i: number) => Partial<Reading> = () => ({})): Reading[] {
  const n = noise(seed);
  return Array.from({ length: points }, (_, i) => {
    const o = over(i);
    return at(from + i * 20, {
      voltage: round(28.9 + n(0.03), 2),
      temperature: round(20 + n(0.25), 1),
      gyro: round(0.063 + n(0.003), 3),
      current: round(1.3 + n(0.025), 2),
      wheel_speed: Math.round(3000 + 150 * Math.sin((2 * Math.PI * i) / 285) + n(3)),
      ...o,
    });
  });
}
const round = (x: number, d: number) => Number(x.toFixed(d));
const flagged = (ds: ReadonlyArray<{ isAnomaly: boolean }>) => ds.filter((d) => d.isAnomaly).length;

describe("detect: point checks", () => {
  it("finds nothing in a nominal first reading, and hands back a state", () => {
    const { detection, state } = detect(base, undefined);
    expect(detection).toMatchObject({ isAnomaly: false, score: 0, type: "NONE", findings: [] });
    expect(state).toMatchObject({ v: DETECTOR_STATE_VERSION, time: base.time, seen: 1 });
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
    const d = detect({ ...base, ...over }, undefined).detection;
    expect(d.isAnomaly).toBe(true);
    expect(d.type).toBe(type);
    expect(d.score).toBeGreaterThanOrEqual(0.5);
    expect(d.findings[0]!.reason).toMatch(/nominal/);
  });

  it("scores further from the band higher, capped at 1", () => {
    const score = (voltage: number) => detect({ ...base, voltage }, undefined).detection.score;
    expect(score(23)).toBeLessThan(score(10));
    expect(score(10)).toBeLessThanOrEqual(score(0));
    expect(score(0)).toBe(1);
  });

  it("flags a jump against the last nominal value of the same source, and accepts it spread over time", () => {
    const first = detect(at(0, { current: 1 }), undefined).state;
    const jump = detect(at(1, { current: 4 }), first).detection;
    expect(jump.findings.find((f) => f.check === "rate")).toMatchObject({ field: "current", type: "RATE_OF_CHANGE" });
    expect(jump.findings.find((f) => f.check === "rate")!.reason).toMatch(/current changed 3\/s since its last nominal value 1/);
    expect(detect(at(60, { current: 4 }), first).detection.findings.some((f) => f.check === "rate")).toBe(false);
  });

  it("catches a small gyro spike (0.6 deg/s in one sample) and not the reading after it", () => {
    const [a, b] = nominal(12).slice(10);
    const before = run(nominal(10)).state;
    const spike = detect({ ...a!, gyro: 0.663 }, before);
    expect(spike.detection).toMatchObject({ isAnomaly: true, type: "ATTITUDE_RATE" });
    // Back to the orbit rate: judged against the value before the spike, not against the spike.
    expect(detect({ ...b!, gyro: 0.064 }, spike.state).detection.isAnomaly).toBe(false);
  });

  it("does not take a spike's plausible last point as a new level: its end is a return, not a jump", () => {
    // 1.2 deg/s (flagged), then 0.9 deg/s: within the acceleration limit of the last nominal
    // value over 40 s, so it is nominal and becomes that value; then back to the orbit rate.
    const [a, b, c, d] = nominal(14).slice(10);
    const before = run(nominal(10)).state;
    const first = detect({ ...a!, gyro: 1.2 }, before);
    const second = detect({ ...b!, gyro: 0.9 }, first.state);
    expect(first.detection.type).toBe("ATTITUDE_RATE");
    expect(second.state.fields.gyro?.good).toBe(0.9);
    // The return is plausible from the readings before the spike (still among the last 4).
    const back = detect({ ...c! }, second.state);
    expect(back.detection.findings.filter((f) => f.field === "gyro")).toEqual([]);
    expect(detect({ ...d! }, back.state).detection.isAnomaly).toBe(false);
  });

  it("flags a stuck sensor only while other sensors move", () => {
    const moving = [0, 1, 2, 3, 4].map((s) => at(s * 20, { temperature: 20 + s * 0.3, voltage: 28 }));
    const stuck = run(moving).detections.at(-1)!;
    expect(stuck.findings.some((f) => f.type === "SENSOR_STUCK" && f.field === "voltage")).toBe(true);
    const still = run([0, 1, 2, 3, 4].map((s) => at(s * 20))).detections.at(-1)!;
    expect(still.findings).toEqual([]);
  });

  it("is more confident with more fields and more readings behind it", () => {
    const bare = detect({ voltage: 28, temperature: 20, gyro: 0, time: 0 }, undefined).detection.confidence;
    const rich = run([at(0), at(5), at(10)]).detections.at(-1)!.confidence;
    expect(rich).toBeGreaterThan(bare);
    expect(rich).toBeLessThanOrEqual(1);
  });
});

describe("detect: slow faults (the physics trackers)", () => {
  it("does not flag a day of nominal noise (but for a quantised sensor repeating itself by chance)", () => {
    for (const seed of [1, 2, 3]) {
      const findings = run(nominal(4320, seed)).detections.flatMap((d) => d.findings);
      expect(findings.filter((f) => f.check !== "stuck")).toEqual([]);
      expect(findings.length).toBeLessThanOrEqual(2);
    }
  });

  it("does not flag nominal heating and cooling within the heat balance (15 min time constant)", () => {
    // Eclipse exit: from -5 °C towards 35 °C with a 20 min time constant, then eclipse (the bus
    // steps down 0.6 V and discharges): towards -5 °C.
    let t = -5;
    let v = 28.9;
    const n = noise(9);
    const readings = nominal(600, 9, 0, (i) => {
      const sunlit = i % 285 < 185;
      t += ((sunlit ? 35 : -5) - t) * (1 - Math.exp(-20 / 1200));
      v += ((sunlit ? 28.9 : 28.3 - 0.02 * ((i % 285) - 185)) - v) * (1 - Math.exp(-20 / (sunlit ? 360 : 60)));
      return { temperature: round(t + n(0.25), 1), voltage: round(v + n(0.03), 2) };
    });
    // (A quantised sensor near its equilibrium may repeat itself by chance: not this test's subject.)
    expect(run(readings).detections.flatMap((d) => d.findings).filter((f) => f.check !== "stuck")).toEqual([]);
  });

  it("catches a downward temperature drift in sunlight (-15 °C over 30 min), which eclipse cooling would explain", () => {
    // Sunlit and settled at 32 °C: a healthy bus there cools at most towards 28 °C (payload off).
    const settled = nominal(60, 27, -1200, () => ({ temperature: 32 }));
    const n = noise(28);
    const drift = nominal(90, 28, 0, (i) => ({ temperature: round(32 - (15 * (i + 1)) / 90 + n(0.25), 1) }));
    const { detections } = run([...settled, ...drift]);
    const first = detections.findIndex((d) => d.isAnomaly && d.findings.some((f) => f.field === "temperature" && f.check === "drift"));
    expect(first).toBeGreaterThanOrEqual(60);
    expect((first - 60 + 1) * 20).toBeLessThanOrEqual(900);
    expect(detections[first]!.findings.find((f) => f.field === "temperature")).toMatchObject({ type: "THERMAL_LOW" });
    // Such a fall (and a faster one) in eclipse, the bus 0.6 V lower and discharging from the
    // fall's start, is what eclipse cooling does: towards -3 °C with a 20 min time constant (an
    // eclipsed bus above the heater's 5 °C cannot stay at 32 °C nor cool slower than 25 min allow).
    const m = noise(29);
    const eclipse = nominal(150, 29, -1200, (i) => ({
      voltage: round((i < 60 ? 28.9 : 28.2 - 0.01 * (i - 60)) + m(0.03), 2),
      temperature: round(i < 60 ? 32 : -3 + 35 * Math.exp((-(i - 59) * 20) / 1200) + m(0.25), 1),
    }));
    expect(run(eclipse).detections.flatMap((d) => d.findings).filter((f) => f.field === "temperature" && f.check === "drift")).toEqual([]);
  });

  it("catches a thermal runaway of 0.05 °C/s within 5 min, and stops once it has cooled back", () => {
    // Two hours into sunlight (an exit's warming is over; a payload session could still add 4 °C),
    // then 10 min of heating at 0.05 °C/s and a cool-down with a 10 min time constant.
    const start = 360;
    const n = noise(4);
    const readings = nominal(start + 180, 3, -7200, (i) => {
      const j = i - start;
      const excess = j < 0 ? 0 : j < 30 ? 0.05 * 20 * (j + 1) : 30 * Math.exp((-(j - 29) * 20) / 600);
      return { temperature: round(20 + excess + n(0.25), 1) };
    });
    const { detections } = run(readings);
    const first = detections.findIndex((d) => d.isAnomaly);
    expect(first).toBeGreaterThanOrEqual(start);
    expect((first - start + 1) * 20).toBeLessThanOrEqual(300);
    expect(detections[first]!.type).toBe("THERMAL_HIGH");
    expect(detections[first]!.findings[0]!.reason).toMatch(/temperature .* above the .* the physics allows/);
    // Still flagged through the first 10 min of the cool-down (excess above 10 °C) …
    expect(flagged(detections.slice(start + 30, start + 60))).toBe(30);
    // … and the tracker lets go once the excess is small (below 3 °C after 600·ln 10 ≈ 1380 s).
    expect(detections.slice(start + 30 + 70).flatMap((d) => d.findings).filter((f) => f.field === "temperature" && f.check !== "stuck")).toEqual([]);
  });

  it("catches a current drift of +1 A over 40 min within 15 min, and not the points after it clears", () => {
    const drift = nominal(120, 6, 0, (i) => ({ current: round(1.3 + (1 * (i + 1)) / 120, 2) }));
    const { detections } = run([...nominal(30, 7, -600), ...drift, ...nominal(60, 8, 2400)]);
    const first = detections.findIndex((d) => d.isAnomaly);
    expect(first - 30).toBeLessThanOrEqual(45);
    expect(detections[first]!.findings[0]).toMatchObject({ field: "current", check: "drift", type: "DRIFT" });
    expect(flagged(detections.slice(30 + 120))).toBe(0);
  });

  it("catches a voltage collapse of 3 V at once, keeps flagging while it holds, and stops when it recovers", () => {
    const n = noise(10);
    const collapse = nominal(15, 10, 0, (i) => ({ voltage: round((i < 2 ? 27.4 - 1.5 * i : 25.9) + n(0.03), 2) }));
    const { detections } = run([...nominal(30, 21, -600), ...collapse, ...nominal(30, 12, 300)]);
    expect(detections.slice(30, 45).every((d) => d.isAnomaly)).toBe(true);
    expect(detections.slice(31, 45).every((d) => d.type === "POWER_UNDERVOLTAGE")).toBe(true);
    expect(flagged(detections.slice(45))).toBe(0);
  });

  it("counts the slew's momentum out of the wheel speed (350 rpm per deg/s of body rate)", () => {
    const n = noise(13);
    const slew = nominal(30, 13, 0, (i) => (i >= 5 && i < 25 ? { gyro: round(0.8 + 0.063 + n(0.003), 3), wheel_speed: Math.round(3000 + 150 * Math.sin((2 * Math.PI * i) / 285) + 350 * 0.8) } : {}));
    // The gyro steps are slews, not spikes, when ramped: two steps of 0.4 deg/s.
    slew[5] = { ...slew[5]!, gyro: 0.463, wheel_speed: slew[5]!.wheel_speed! - 140 };
    slew[24] = { ...slew[24]!, gyro: 0.463, wheel_speed: slew[24]!.wheel_speed! - 140 };
    expect(flagged(run([...nominal(30, 14, -600), ...slew]).detections)).toBe(0);
  });
});

describe("detect: what the physics tells apart", () => {
  it("reads eclipse from the bus voltage: a bus that stops cooling in eclipse is heating", () => {
    // Eclipse entry at point 30: the voltage steps down 0.6 V (60 s time constant) and discharges,
    // and the bus cools towards -5 °C.
    let t = 20;
    const n = noise(18);
    const eclipse = (runaway: boolean) =>
      nominal(60, 19, 0, (i) => {
        if (i >= 30) t += (-5 - t) * (1 - Math.exp(-20 / 1200));
        const heat = runaway && i >= 40 ? 0.035 * 20 * (i - 39) : 0;
        const entry = i < 30 ? 0 : 0.6 * (1 - Math.exp(-((i - 29) * 20) / 60)) + 0.01 * (i - 30);
        return { voltage: round(28.9 - entry + n(0.03), 2), temperature: round(t + heat + n(0.25), 1) };
      });
    expect(flagged(run(eclipse(false)).detections)).toBe(0);
    t = 20;
    const { detections } = run(eclipse(true));
    const first = detections.findIndex((d) => d.isAnomaly);
    // 0.035 °C/s: slower than a sunlit bus may warm, but in eclipse nothing warms it above 5 °C.
    expect(first).toBeGreaterThanOrEqual(40);
    expect((first - 40 + 1) * 20).toBeLessThanOrEqual(160);
    expect(detections[first]!.type).toBe("THERMAL_HIGH");
    const m = noise(20);
    expect(run([...nominal(10, 20), ...nominal(10, 21, 200, () => ({ voltage: round(28.2 + m(0.03), 2) }))]).state!.sky).toBe("eclipse");
  });

  it("judges only falls of the bus voltage by rate: a bus charging back is not a jump", () => {
    const m = noise(22);
    const low = run(nominal(10, 22, 0, () => ({ voltage: round(26.4 + m(0.03), 2) }))).state;
    expect(detect(at(200, { voltage: 28.6 }), low).detection.isAnomaly).toBe(false);
    expect(detect(at(200, { voltage: 24.2 }), low).detection.findings.some((f) => f.check === "rate")).toBe(true);
  });

  it("flags a temperature sensor's offset jump once, then tracks the new level", () => {
    const jump = nominal(20, 23, 600, (i) => ({ temperature: round(32 + 0.1 * (i % 3), 1) }));
    const { detections } = run([...nominal(30, 24), ...jump]);
    expect(detections[30]!.findings.map((f) => f.check)).toContain("rate");
    expect(flagged(detections.slice(31))).toBe(0);
  });

  it("learns a wheel's own momentum build-up and flags a faster climb", () => {
    // +0.4 rpm/s of build-up is nominal for this satellite once learned; a +2 rpm/s climb is not.
    const climb = (extra: number) => nominal(360, 25, 0, (i) => ({ wheel_speed: Math.round(2600 + 8 * i + (i >= 300 ? extra * 20 * (i - 299) : 0)) }));
    expect(flagged(run(climb(0)).detections)).toBe(0);
    const { detections } = run(climb(2));
    const first = detections.findIndex((d) => d.isAnomaly);
    expect(first).toBeGreaterThanOrEqual(300);
    expect(first - 300).toBeLessThanOrEqual(6);
    expect(detections[first]!.findings[0]).toMatchObject({ field: "wheel_speed", check: "drift", type: "DRIFT" });
  });
});

describe("detect: recovery", () => {
  it("does not flag the jump back when a drift the band flagged clears (a reading past the other side ends it)", () => {
    // Sunlit plateau; the voltage sensor drifts +3 V over 20 min (the band flags it above 29.8 V),
    // then its bias clears at once: the bus is back at 28.9 V, nominal.
    const drift = nominal(60, 30, 0, (i) => ({ voltage: round(28.9 + (3 * (i + 1)) / 60, 2) }));
    const { detections } = run([...nominal(60, 31, -1200), ...drift, ...nominal(30, 32, 1200)]);
    expect(detections.slice(60, 120).some((d) => d.type === "POWER_OVERVOLTAGE")).toBe(true);
    expect(detections.slice(120).flatMap((d) => d.findings).filter((f) => f.field === "voltage")).toEqual([]);
  });

  it("allows a momentum dump only beyond the momentum limits: a 2 rpm/s climb at 1800 rpm is a drift", () => {
    // A satellite with a learned build-up of -0.05 rpm/s, two orbits long, down to ~1800 rpm.
    const learned = (extra: (i: number) => number) =>
      nominal(700, 33, 0, (i) => ({ wheel_speed: Math.round(2400 - Math.min(i, 580) + 150 * Math.sin((2 * Math.PI * i) / 285) + extra(i)) }));
    // A +2 rpm/s climb from there, towards 2500 rpm, is no dump: none started (it is above 800 rpm).
    const { detections } = run(learned((i) => (i > 600 ? 40 * (i - 600) : 0)));
    expect(detections.slice(600, 615).some((d) => d.findings.some((f) => f.field === "wheel_speed" && f.check === "drift"))).toBe(true);
    // A real dump: a build-up of 0.4 rpm/s to 4700 rpm, then driven back to ~2450 rpm at 3 rpm/s.
    const n = noise(34);
    const dump = nominal(400, 34, 0, (i) => ({ wheel_speed: Math.round(Math.max(2450, i < 300 ? 2300 + 8 * i : 4700 - 60 * (i - 300)) + n(3)) }));
    expect(run(dump).detections.flatMap((d) => d.findings).filter((f) => f.field === "wheel_speed")).toEqual([]);
  });
});

describe("detect: the state", () => {
  it("stays under 2 KiB of JSON whatever the readings", () => {
    const reading = fc.record({
      voltage: fc.double({ min: 0, max: 50, noNaN: true }),
      temperature: fc.double({ min: -100, max: 150, noNaN: true }),
      gyro: fc.double({ min: -1000, max: 1000, noNaN: true }),
      current: fc.option(fc.double({ min: 0, max: 1000, noNaN: true }), { nil: undefined }),
      wheel_speed: fc.option(fc.double({ min: 0, max: 100_000, noNaN: true }), { nil: undefined }),
      dt: fc.integer({ min: -60_000, max: 3_600_000 }),
    });
    fc.assert(
      fc.property(fc.array(reading, { minLength: 1, maxLength: 300 }), (list) => {
        let state: DetectorState | undefined;
        let time = 0;
        for (const { dt, current, wheel_speed, ...r } of list) {
          time += dt;
          state = detect({ ...r, ...(current !== undefined && { current }), ...(wheel_speed !== undefined && { wheel_speed }), time }, state).state;
        }
        expect(JSON.stringify(state).length).toBeLessThanOrEqual(2048);
      }),
      { numRuns: 60 },
    );
  });

  it("survives JSON: a stored state judges the next reading exactly as the live one", () => {
    const readings = nominal(50, 15);
    const { state } = run(readings);
    const next = at(1000, { current: 2.5 });
    expect(detect(next, JSON.parse(JSON.stringify(state)) as DetectorState)).toEqual(detect(next, state));
    // Even the fresh state (time -Infinity becomes null in JSON).
    expect(detect(base, JSON.parse(JSON.stringify(freshState())) as DetectorState)).toEqual(detect(base, undefined));
  });

  it("never changes the state it is given (the caller's copy stays the satellite's last state)", () => {
    const freeze = <T>(x: T): T => {
      if (x && typeof x === "object") for (const v of Object.values(x)) freeze(v);
      return Object.freeze(x);
    };
    const { state } = run(nominal(30, 26));
    const before = JSON.stringify(state);
    expect(() => detect(at(700, { voltage: 24, temperature: 30 }), freeze(state!))).not.toThrow();
    expect(JSON.stringify(state)).toBe(before);
  });

  it("starts fresh from a state another version wrote, or a malformed one", () => {
    const fresh = detect(at(0, { voltage: 22 }), undefined);
    for (const old of [{ v: 0, history: [base] }, { v: 1, time: 0, recent: [], fields: {}, seen: 3 }, { v: DETECTOR_STATE_VERSION + 1, time: 0, recent: [], fields: {}, seen: 3 }, [base], null, "x"]) {
      expect(detect(at(0, { voltage: 22 }), old as unknown as DetectorState)).toEqual(fresh);
    }
  });

  it("judges a late or duplicate reading on its bands only and keeps the state", () => {
    const { state } = run(nominal(10, 16));
    const late = detect(at(20, { current: 4, voltage: 24 }), state);
    expect(late.state).toEqual(state);
    expect(late.detection.findings.map((f) => f.check)).toEqual(["limit"]);
  });

  it("restarts the trackers after a gap of more than 30 min (the physics moved unobserved)", () => {
    const { state } = run(nominal(30, 17));
    const after = detect(at(600 + 3 * 3600, { temperature: 34, current: 2.9, voltage: 27.2 }), state);
    expect(after.detection.isAnomaly).toBe(false);
  });
});

/**
 * Whole orbits of a satellite, one reading every 20 s: 95 min, of which 33 min eclipse (from
 * `eclipseAt` points into each orbit); the bus voltage sits on 29 V in sunlight, steps down 0.6 V
 * at entry (60 s time constant) and discharges 2 V over the eclipse, charging back after it (6 min);
 * the temperature follows 33 °C in sunlight and -3 °C in eclipse with a 20 min time constant.
 * `over(i, healthy)` may change a reading (given the healthy one).
 */
function orbits(points: number, seed: number, over: (i: number, r: Reading) => Partial<Reading> = () => ({})): Reading[] {
  const n = noise(seed);
  const period = 285;
  const eclipseAt = 185;
  let t = 20;
  let v = 29;
  return Array.from({ length: points }, (_, i) => {
    const u = i % period;
    const eclipse = u >= eclipseAt;
    t += ((eclipse ? -3 : 33) - t) * (1 - Math.exp(-20 / 1200));
    const target = eclipse ? 28.4 - (2 * (u - eclipseAt)) / (period - eclipseAt) : 29;
    v += (target - v) * (1 - Math.exp(-20 / (eclipse ? 60 : 360)));
    const r = at(i * 20, {
      voltage: round(v + n(0.03), 2),
      temperature: round(t + n(0.25), 1),
      gyro: round(0.063 + n(0.003), 3),
      current: round(1.3 + n(0.025), 2),
      wheel_speed: Math.round(3000 + 150 * Math.sin((2 * Math.PI * i) / period) + n(3)),
    });
    return { ...r, ...over(i, r) };
  });
}

describe("detect: the satellite's own thermal cycle (issue 17)", () => {
  // Four orbits learned, then a runaway 40 min into the fifth orbit's sunlight: 0.05 °C/s for
  // 10 min, cooling back with a 10 min time constant.
  const start = 4 * 285 + 120;
  const excessAt = (i: number) => {
    const j = i - start;
    return j < 0 ? 0 : j < 30 ? 0.05 * 20 * (j + 1) : 30 * Math.exp((-(j - 29) * 20) / 600);
  };
  const runaway = orbits(start + 150, 41, (i, r) => ({ temperature: round(r.temperature + excessAt(i), 1) }));

  it("keeps a confirmed runaway latched through its cool-down while it is more than 2.5 °C above the cycle", () => {
    const { detections } = run(runaway);
    expect(detections.slice(0, start).filter((d) => d.isAnomaly && d.findings.some((f) => f.field === "temperature"))).toEqual([]);
    // The cool-down points with an excess of 4..8 °C: beyond what the physics envelope catches,
    // within what the satellite's own cycle tells apart.
    const cooling = detections.map((d, i) => ({ d, e: excessAt(i) })).filter(({ e }, i) => i >= start + 30 && e >= 4 && e <= 8);
    expect(cooling.length).toBeGreaterThan(15);
    expect(cooling.filter(({ d }) => d.isAnomaly && d.type === "THERMAL_HIGH").length).toBeGreaterThanOrEqual(cooling.length - 1);
    expect(cooling.some(({ d }) => /own orbit cycle expects .*latched since/.test(d.findings[0]!.reason))).toBe(true);
  });

  it("ends the latch once the bus is back within the margin, and flags nothing after", () => {
    const { detections, state } = run(runaway);
    // Below 1 °C of excess (600·ln 30 ≈ 2040 s after the peak) the runaway is over.
    const after = detections.slice(start + 30 + 102);
    expect(after.filter((d) => d.findings.some((f) => f.field === "temperature" && f.check !== "stuck"))).toEqual([]);
    expect(state!.latch).toBeUndefined();
    // The cycle is bounded: 14 sunlit and 8 eclipse knots.
    expect(state!.cycle!.sunlit).toHaveLength(14);
    expect(state!.cycle!.eclipse).toHaveLength(8);
  });

  it("takes a fall after a runaway for its heat leaving only down to the cycle: a drift below it is THERMAL_LOW", () => {
    const hot = (d: { findings: readonly { type: string }[] }) => d.findings.some((f) => f.type === "THERMAL_HIGH");
    const lastHigh = Math.max(...run(runaway).detections.map((d, i) => (hot(d) ? i : -1)));
    // 10 min after the runaway's last THERMAL_HIGH (within the 25 min its heat may take to leave),
    // the sensor drifts down 0.5 °C a sample to 6 °C below the bus.
    const from = lastHigh + 30;
    const drift = orbits(from + 20, 41, (i, r) => ({ temperature: round(r.temperature! + excessAt(i) - (i < from ? 0 : Math.min(6, 0.5 * (i - from + 1))), 1) }));
    const { detections } = run(drift);
    expect(detections.slice(from, from + 20).some((d) => d.type === "THERMAL_LOW")).toBe(true);
  });
});

describe("detect: orbit phases and slews (issue 17)", () => {
  it("keeps the sky sunlit when the voltage falls like an entry too soon after a seen exit (no sunlight is that short)", () => {
    // Two orbits, then 10 min into the third sunlight a downward voltage drift of 0.12 V a sample.
    const from = 2 * 285 + 30;
    const readings = orbits(from + 6, 43, (i, r) => (i >= from ? { voltage: round(r.voltage - 0.12 * (i - from + 1), 2) } : {}));
    const { state } = run(readings);
    expect(state!.sky).not.toBe("eclipse");
    expect(state!.skyKnown).toBe("sunlit");
    // A real entry, at the end of the sunlight, still reads as eclipse.
    expect(run(orbits(2 * 285 + 190, 43)).state!.sky).toBe("eclipse");
  });

  it("does not take a gyro spike's second point as a slew: the wheel is not flagged after it", () => {
    const base = orbits(400, 44);
    // The spike's second point is plausible from its first (0.014 deg/s²), so it became nominal; the
    // wheel meanwhile moves 30 rpm a sample (as in a dump) and stays there. Taken as a slew, its
    // 375 rpm of momentum (+ the wheel's 30) restarts the wheel's tracker from a reading 375 rpm off.
    const spike = base.map((r, i) => ({
      ...r,
      ...(i === 380 && { gyro: -0.8 }),
      ...(i === 381 && { gyro: -1.07 }),
      ...(i >= 381 && { wheel_speed: r.wheel_speed! + (i === 381 ? 30 : 60) }),
    }));
    const { detections } = run(spike);
    expect(detections.slice(382).flatMap((d) => d.findings).filter((f) => f.field === "wheel_speed")).toEqual([]);
  });

  it("flags a voltage rising in eclipse, where nothing charges the battery", () => {
    // Two orbits, then from 5 min into the third eclipse a sensor drifting up 0.05 V a sample.
    const from = 2 * 285 + 200;
    const readings = orbits(from + 40, 45, (i, r) => (i >= from ? { voltage: round(r.voltage + 0.05 * (i - from + 1), 2) } : {}));
    const { detections } = run(readings);
    const first = detections.findIndex((d, i) => i >= from && d.findings.some((f) => f.field === "voltage" && f.check === "drift" && f.type === "DRIFT"));
    expect(first).toBeGreaterThanOrEqual(from);
    // 0.05 V a sample against a discharge of 0.02: 0.6 V above the tracker after ~20 samples, smoothed.
    expect(first - from).toBeLessThanOrEqual(40);
    expect(detections.slice(0, from).filter((d) => d.isAnomaly)).toEqual([]);
  });
});

describe("detect: recovery and the orbit's timing (issue 17, fourth pass)", () => {
  it("does not take a runaway's heat leaving after its last THERMAL_HIGH for THERMAL_LOW (within 25 min)", () => {
    // The bus heats 10 °C in 10 samples (a runaway, THERMAL_HIGH), the tracker lets it back in,
    // then the last of the heat leaves in one sample (3 °C).
    const readings = (drop: number) =>
      nominal(drop + 10, 3).map((r, i) => ({ ...r, temperature: round(r.temperature! + (i < 100 ? 0 : i < 110 ? i - 99 : i < drop ? 10 : 7), 1) }));
    const soon = run(readings(150)).detections;
    const lastHigh = Math.max(...soon.map((d, i) => (i < 150 && d.findings.some((f) => f.type === "THERMAL_HIGH") ? i : -1)));
    expect(lastHigh).toBeGreaterThan(100);
    expect(150 - lastHigh).toBeLessThan(45);
    expect(soon.slice(150).filter((d) => d.findings.some((f) => f.type === "THERMAL_LOW"))).toEqual([]);
    // 20 min after it (more than the shortest time constant, less than the longest) too.
    const mid = run(readings(lastHigh + 60)).detections;
    expect(mid.slice(lastHigh + 60).filter((d) => d.findings.some((f) => f.type === "THERMAL_LOW"))).toEqual([]);
    // Later than the bus's longest time constant after it, such a fall is judged again.
    const late = run(readings(lastHigh + 100)).detections;
    expect(late[lastHigh + 100]!.type).toBe("THERMAL_LOW");
  });

  it("follows a slew that starts during a gyro spike: the wheel that moved with it is no drift", () => {
    // A 3-point spike; the body turns at 0.9 deg/s from its last point on, and the wheel absorbs
    // the 315 rpm of momentum (350 rpm per deg/s) as it starts. The gyro is nominal only once
    // after the spike, but the wheel agrees with it.
    const readings = nominal(420, 5).map((r, i) => ({
      ...r,
      ...(i >= 380 && i <= 382 && { gyro: 25 + i - 380 }),
      ...(i >= 383 && { gyro: round(r.gyro! + 0.9, 3) }),
      ...(i >= 382 && { wheel_speed: r.wheel_speed! + 315 }),
    }));
    const { detections } = run(readings);
    expect(detections.slice(383).flatMap((d) => d.findings).filter((f) => f.field === "wheel_speed")).toEqual([]);
  });

  it("flags a bus that stops cooling in eclipse above the heater's 5 °C (it must cool, 25 min time constant)", () => {
    // From 5 min into the third eclipse the temperature reads level (a sensor drifting up as fast
    // as the bus cools, 0.02 °C/s here).
    const from = 2 * 285 + 200;
    let held = 0;
    const readings = orbits(from + 40, 47, (i, r) => {
      if (i === from) held = r.temperature!;
      return i >= from ? { temperature: round(held + (i % 2) * 0.1, 1) } : {};
    });
    const { detections } = run(readings);
    expect(held).toBeGreaterThan(15);
    const first = detections.findIndex((d, i) => i >= from && d.findings.some((f) => f.field === "temperature" && f.type === "THERMAL_HIGH"));
    expect(first).toBeGreaterThanOrEqual(from);
    expect(first - from).toBeLessThanOrEqual(25);
    expect(detections.slice(0, from).filter((d) => d.isAnomaly)).toEqual([]);
  });

  it("does not read an eclipse entry from a fall of a whole entry step in one sample (an upward drift clearing)", () => {
    // 20 min into the third sunlight the voltage sensor drifts up 0.05 V a sample for 50 samples
    // (2 V, flagged by the band), then the bias clears: a fall of 2 V in one sample.
    const from = 2 * 285 + 60;
    const to = from + 40;
    const readings = orbits(to + 10, 48, (i, r) => (i >= from && i < to ? { voltage: round(r.voltage! + 0.05 * (i - from + 1), 2) } : {}));
    const skies = run(readings).states.slice(to).map((st) => st.sky ?? "");
    expect(skies).not.toContain("eclipse");
  });

  it("ends an eclipse misread from a downward voltage drift when the bus jumps back onto the plateau", () => {
    // 53 min into the third sunlight (an entry is due: the timing allows it) the voltage drifts
    // down 0.12 V a sample for 15 samples, read as an entry; then the bias clears in one sample.
    const from = 2 * 285 + 160;
    const to = from + 15;
    const readings = orbits(to + 8, 49, (i, r) => (i >= from && i < to ? { voltage: round(r.voltage! - 0.12 * (i - from + 1), 2) } : {}));
    const skies = run(readings).states.map((st) => st.sky ?? "");
    expect(skies.slice(from + 2, to)).toContain("eclipse");
    expect(skies.slice(to + 1)).toEqual(new Array(7).fill("sunlit"));
  });

  it("ends an eclipse read for longer than the longest eclipse (40 min): the bus is sunlit, its start timed", () => {
    // A downward voltage drift from the end of the third eclipse hides the exit's charging.
    const from = 2 * 285 + 270;
    let held = 0;
    const readings = orbits(from + 60, 50, (i, r) => {
      if (i === from) held = r.voltage!;
      return i >= from ? { voltage: round(held - 0.003 * (i - from) + (i % 2) * 0.02, 2) } : {};
    });
    const { state } = run(readings);
    expect(state!.sky).toBe("sunlit");
    // Sunlight known from the orbit's timing, not seen: held by it, too loose for the thermal cycle.
    expect(state!.skyEdge).toBe("timed");
  });

  it("does not flag the jump back when a drift clears after the envelope let it back in (a return to its anchor)", () => {
    // A temperature bias of +20 °C in 20 samples, flagged; the envelope widens until the readings
    // are back in; 50 min after the drift began, the bias clears (a fall of 20 °C in one sample).
    const jump = 260;
    const readings = nominal(jump + 10, 7).map((r, i) => ({ ...r, temperature: round(r.temperature! + (i < 100 ? 0 : i < 120 ? i - 99 : i < jump ? 20 : 0), 1) }));
    const { detections } = run(readings);
    expect(detections.slice(100, 120).some((d) => d.findings.some((f) => f.field === "temperature" && f.type === "THERMAL_HIGH"))).toBe(true);
    expect(detections.slice(jump - 20, jump).filter((d) => d.isAnomaly)).toEqual([]);
    expect(detections.slice(jump).filter((d) => d.findings.some((f) => f.field === "temperature"))).toEqual([]);
  });
});

describe("detect: slow wheel drifts (issue 17, fifth pass)", () => {
  it("does not learn a drift into the wheel's build-up rate while the readings outrun the physics", () => {
    // Two orbits at a build-up of +0.1 rpm/s (learned), then a sensor drift of +0.3 rpm/s more:
    // faster than the learned rate and the orbital cycle's 0.25 rpm/s allow. Learned into the rate
    // (2 h time constant), it would widen what the tracker allows as it goes, hiding slow drifts.
    const n = noise(41);
    const wheel = (i: number) => Math.round(1500 + 2 * i + (i >= 300 ? 6 * (i - 299) : 0) + n(3));
    const readings = nominal(330, 41, 0, (i) => ({ wheel_speed: wheel(i) }));
    const before = run(readings.slice(0, 300)).state!;
    const learned = (before.fields.wheel_speed as { slope: number }).slope;
    expect(learned).toBeCloseTo(0.1, 1);
    const after = run(readings.slice(300, 330), before).state!;
    expect(Math.abs((after.fields.wheel_speed as { slope: number }).slope - learned)).toBeLessThan(0.005);
  });

  it("flags a momentum dump that stops short of 2500 rpm (a sensor bias), and not one that gets there", () => {
    // A learned build-up of +0.3 rpm/s up to 4700 rpm, then the dump at 3 rpm/s towards 2500 rpm.
    const n = noise(42);
    const dump = (stop: number) => nominal(420, 42, 0, (i) => ({ wheel_speed: Math.round((i < 300 ? 2900 + 6 * i : Math.max(stop, 4700 - 60 * (i - 300)) + 6 * Math.max(0, i - 300 - (4700 - stop) / 60)) + n(3)) }));
    // It reads 3200 rpm where it stops (700 rpm of bias): dumps run until within ~100 rpm of 2500.
    const short = run(dump(3200)).detections;
    expect(short.slice(0, 300).filter((d) => d.findings.some((f) => f.field === "wheel_speed"))).toEqual([]);
    const stalled = 300 + (4700 - 3200) / 60;
    expect(short.slice(stalled, stalled + 15).some((d) => d.findings.some((f) => f.field === "wheel_speed" && f.type === "DRIFT"))).toBe(true);
    expect(run(dump(2450)).detections.flatMap((d) => d.findings).filter((f) => f.field === "wheel_speed")).toEqual([]);
  });
});

describe("detect: alarms that hold and skies that last (issue 17, sixth pass)", () => {
  it("holds a drift alarm while the reading stays beyond 3/4 of the threshold (a deadband), and clears it back at nominal", () => {
    // The current drifts up 0.04 A a sample to +0.24 A (flagged past the 0.15 A threshold), then
    // eases to +0.145 A: under the threshold, but still a drift; then the bias clears.
    const bias = (i: number) => (i < 60 ? 0 : i < 66 ? 0.04 * (i - 59) : i < 69 ? 0.24 : i < 75 ? 0.145 : 0);
    const readings = nominal(95, 11).map((r, i) => ({ ...r, current: round(1.3 + (i % 2) * 0.01 + bias(i), 2) }));
    const { detections } = run(readings);
    const drift = (i: number) => detections[i]!.findings.some((f) => f.field === "current" && f.check === "drift");
    const current = (d: (typeof detections)[number]) => d.findings.some((f) => f.field === "current");
    expect(detections.slice(0, 60).filter(current)).toEqual([]);
    expect([66, 67, 68].every(drift)).toBe(true);
    expect([69, 70, 71, 72, 73, 74].every((i) => drift(i) && detections[i]!.isAnomaly)).toBe(true);
    expect(detections.slice(75).filter(current)).toEqual([]);
  });

  it("keeps an eclipse whose entry was seen for its shortest length (25 min), however long the voltage was flagged", () => {
    // At the third eclipse's entry the voltage sensor drifts up 0.05 V a sample for 50 samples
    // (flagged once 0.6 V above what the discharge allows, for more than the 5 min an unknown sky
    // is otherwise held, then beyond the band's 29.8 V) and reads like a plateau: it is still
    // eclipse 17 min after the entry, and every reading of it is flagged.
    const from = 2 * 285 + 186;
    const to = from + 50;
    const readings = orbits(to, 51, (i, r) => (i >= from ? { voltage: round(r.voltage! + 0.05 * (i - from + 1), 2) } : {}));
    const { detections } = run(readings);
    const first = detections.findIndex((d, i) => i >= from && d.findings.some((f) => f.field === "voltage" && f.type === "DRIFT"));
    expect(first).toBeGreaterThanOrEqual(from);
    expect(to - first).toBeGreaterThan(16);
    expect(detections.slice(first).filter((d) => !d.isAnomaly)).toEqual([]);
  });

  it("does not let a payload's allowance carry the bus above its warmest equilibrium (42 °C)", () => {
    // A sunlit bus at 20 °C; its sensor drifts up 0.05 °C a sample (slower than a payload's heat
    // may warm it) to 47 °C, under the band's 50 °C.
    const readings = nominal(560, 12).map((r, i) => ({ ...r, temperature: round(r.temperature! + (i < 20 ? 0 : Math.min(27, 0.05 * (i - 19))), 1) }));
    const { detections } = run(readings);
    const hot = (i: number) => detections[i]!.findings.some((f) => f.field === "temperature" && f.check === "drift" && f.type === "THERMAL_HIGH");
    const first = detections.findIndex((_, i) => hot(i));
    expect(readings[first]!.temperature!).toBeGreaterThan(44);
    expect(readings[first]!.temperature!).toBeLessThan(46);
    // Released by a reading's noise back within the deadband, the tracker starts again from it
    // (≤ 43.9 °C) and cannot rise: every reading more than the threshold above that is flagged.
    expect(readings.filter((r, i) => r.temperature! > 46.4 && !detections[i]!.isAnomaly)).toEqual([]);
    expect(readings.filter((r) => r.temperature! > 46.4).length).toBeGreaterThan(10);
  });

  it("learns the satellite's own sunlight and eclipse lengths from phases whose edges were both seen", () => {
    // The test orbit: 185 samples of sunlight (61.7 min), 100 of eclipse (33.3 min).
    const { state } = run(orbits(4 * 285 + 10, 52));
    expect(state!.phases!.sunlit!.n).toBeGreaterThanOrEqual(2);
    expect(state!.phases!.eclipse!.n).toBeGreaterThanOrEqual(2);
    expect(Math.abs(state!.phases!.sunlit!.s - 185 * 20)).toBeLessThan(60);
    expect(Math.abs(state!.phases!.eclipse!.s - 100 * 20)).toBeLessThan(60);
  });

  it("once it knows its own sunlight, does not read an entry 8 min early: a downward voltage drift then is flagged", () => {
    // 53 min into the fifth sunlight (the shortest of any orbit has passed, this satellite's has
    // not) the voltage drifts down 0.12 V a sample for 15 samples.
    const from = 4 * 285 + 160;
    const to = from + 15;
    const readings = orbits(to + 5, 53, (i, r) => (i >= from && i < to ? { voltage: round(r.voltage! - 0.12 * (i - from + 1), 2) } : {}));
    const { detections, states } = run(readings);
    const skies = states.map((st) => st.skyKnown ?? "");
    expect(skies.slice(from, to)).not.toContain("eclipse");
    expect(detections.slice(from, to).filter((d) => d.type === "POWER_UNDERVOLTAGE").length).toBeGreaterThan(8);
  });

  it("starts the wheel's tracker again once a stuck gyro is back: a slew it hid is no wheel drift", () => {
    // The gyro sticks at its reading for 30 samples; a momentum dump starts (3 rpm/s from 800 rpm
    // towards 2500) and 6 samples before the gyro is freed a slew (-0.32 deg/s over three samples)
    // takes 112 rpm off the wheel: within the dump's rates, so the tracker follows it.
    const readings = nominal(400, 13).map((r, i) => {
      const slew = i < 324 ? 0 : i < 327 ? (-0.32 * (i - 323)) / 3 : -0.32;
      const dump = Math.min(2500, 800 + 60 * Math.max(0, i - 310));
      const wheel = dump + Math.round(350 * slew) + (r.wheel_speed! - Math.round(3000 + 150 * Math.sin((2 * Math.PI * i) / 285)));
      return { ...r, gyro: i >= 300 && i < 330 ? 0.063 : round(r.gyro! + slew, 3), wheel_speed: wheel };
    });
    const { detections } = run(readings);
    expect(detections.slice(305, 330).every((d) => d.findings.some((f) => f.field === "gyro" && f.type === "SENSOR_STUCK"))).toBe(true);
    expect(detections.slice(330).flatMap((d) => d.findings).filter((f) => f.field === "wheel_speed")).toEqual([]);
  });

  it("flags a sunlit voltage above the end-of-charge clamp and its noise (29.42 V): no charger lets a bus read there", () => {
    // A sunlit bus at 28.9 V; its sensor drifts up 0.02 V a sample to 29.7 V (under the band's 29.8 V).
    const readings = nominal(200, 14).map((r, i) => ({ ...r, voltage: round(r.voltage! + (i < 100 ? 0 : Math.min(0.8, 0.02 * (i - 99))), 2) }));
    const { detections } = run(readings);
    const drift = (i: number) => detections[i]!.findings.some((f) => f.field === "voltage" && f.type === "DRIFT");
    expect(readings.filter((r, i) => r.voltage! > 29.42 && !drift(i))).toEqual([]);
    expect(readings.filter((r) => r.voltage! > 29.42).length).toBeGreaterThan(50);
    expect(detections.slice(0, 100).filter((d) => d.findings.some((f) => f.field === "voltage"))).toEqual([]);
  });

  it("lets the temperature go when a misread eclipse ends: it was judged on the wrong sky", () => {
    // 53 min into the third sunlight the voltage drifts down 0.12 V a sample for 15 samples, read
    // as an entry, while a payload session warms the bus by 3 °C: it does not cool as an eclipsed
    // bus must (flagged). Then the voltage's bias clears; the bus is still warm, as it may be.
    const from = 2 * 285 + 160;
    const to = from + 15;
    const readings = orbits(to + 15, 49, (i, r) => ({
      ...(i >= from && i < to && { voltage: round(r.voltage! - 0.12 * (i - from + 1), 2) }),
      ...(i >= from && { temperature: round(r.temperature! + Math.min(3, 0.15 * (i - from + 1)), 1) }),
    }));
    const { detections } = run(readings);
    const hot = (d: (typeof detections)[number]) => d.findings.some((f) => f.field === "temperature" && f.type === "THERMAL_HIGH");
    expect(detections.slice(from, to).some(hot)).toBe(true);
    expect(detections.slice(to).filter(hot)).toEqual([]);
  });
});
