/**
 * The physical limits the detector judges against, for a 28 V bus LEO smallsat (the simulator's
 * spacecraft, scripts/sim/model.mjs). Every number is a property of the spacecraft's design, not of
 * a seed; they were set from that physics and checked on the training seeds only (see README).
 */
import type { AnomalyType, Field } from "./detector-types";

/** Nominal band, and the distance outside it at which a reading counts as fully anomalous. */
export interface Band {
  low: number;
  high: number;
  /** Distance beyond the band where the score reaches 1. */
  span: number;
  /** Largest plausible change between two readings, units per second (judged over ≥ 1 s). */
  maxRatePerSecond: number;
  /** Only falls are judged by the rate check (a rise is a recovery; the band judges it). */
  fallsOnly?: boolean;
}

/**
 * - voltage: the battery's end-of-charge clamp is ≤ 29.2 V and its deepest eclipse discharge with
 *   the heater on ~26.2 V: the band is 25..29.8 V (0.6 V above the clamp is a regulator or sensor
 *   fault; below that, the tracker's ceiling flags a reading 4 σ above the clamp as a sensor
 *   drifting up). A fall faster than 0.05 V/s (1 V between 20 s samples) is a collapse, not a
 *   discharge (≤ 0.012 V/s at eclipse entry); a fast rise is the bus coming back (a collapse
 *   recovering, a sensor bias clearing), judged by the band.
 * - temperature: -10..50 °C operating range; 0.5 °C/s between samples is beyond any heat balance.
 * - gyro: |rate| ≤ 1.5 deg/s (slews peak at 1 deg/s); the attitude control's acceleration limit is
 *   0.025 deg/s² (a slew ramps up in two 20 s steps), so a faster change is a glitch or a spike.
 * - current: 0..4.5 A (base + payload + heater ≤ 4.6 A at the top of the load budget); load
 *   switching changes it by ≤ 2 A at once.
 * - wheel_speed: 0..5500 rpm (dumps start at 4500); slews exchange ≤ 175 rpm per 20 s sample
 *   (≤ 9 rpm/s), so 15 rpm/s is beyond the wheel's torque.
 */
export const BANDS: Record<Field, Band> = {
  voltage: { low: 25, high: 29.8, span: 8, maxRatePerSecond: 0.05, fallsOnly: true },
  temperature: { low: -10, high: 50, span: 40, maxRatePerSecond: 0.5 },
  gyro: { low: -1.5, high: 1.5, span: 8, maxRatePerSecond: 0.028 },
  current: { low: 0, high: 4.5, span: 6, maxRatePerSecond: 2 },
  wheel_speed: { low: 0, high: 5500, span: 3000, maxRatePerSecond: 15 },
};

/**
 * Whether the bus is in sunlight, read from the power system. Eclipse once it falls ≥ 0.25 V below
 * the highest of the last 3 readings (the 0.6 V step at entry, 60 s time constant: 0.17 V in the
 * first 20 s sample, 0.38 V after 3; a payload's 0.18 V IR drop settles over minutes, ≤ 0.01 V a
 * sample; a drift of 4 V in 20 min moves 0.2 V in 3); a fall of ≥ 0.12 V in one sample from
 * sunlight may be an entry's first (noise: 3 σ of a difference of two readings): unknown. Unknown,
 * below the plateau and below every one of the last 4 readings is eclipse (only an eclipse
 * discharges). Sunlit at its end-of-charge plateau (≥ 28.65 V: sunlit levels are ≥ 28.72 V,
 * eclipse starts ≤ 28.6 V; after an eclipse, only once no longer falling), or, after an eclipse or
 * while unknown, charging back ≥ 0.25 V above the lowest of the last readings, no step above
 * 0.25 V (exit: +2.5 V with a 6..10 min time constant, 0.08..0.14 V a sample, for minutes; noise
 * and the heater switching 0.08 V stay below 0.25 V; a collapse recovering jumps faster). A rise of
 * ≥ 0.1 V in eclipse may be an exit's first sample: unknown. "unknown" until either is seen, after
 * a gap, and while the voltage is flagged: judged by the loosest limits of both skies.
 */
export type Sky = "sunlit" | "eclipse" | "unknown";
export const SUNLIT_MIN_V = 28.65;
export const CHARGING_RISE_V = 0.25;
export const CHARGING_ONSET_V = 0.1;
export const MAX_CHARGE_STEP_V = 0.25;
export const ECLIPSE_FALL_V = 0.25;
export const ENTRY_ONSET_V = 0.12;
/** An unknown spell this short cannot hide an orbit phase (the shortest, an eclipse, lasts 31 min). */
export const MAX_UNKNOWN_SKY_MS = 5 * 60_000;

/**
 * The shortest orbit phases: sunlight lasts ≥ 59 min (94 min orbit, 37 % eclipse), an eclipse
 * ≥ 31 min; less the sky's reading delay at both ends (≤ 3 samples at entry, minutes of charging
 * at exit) and a margin: 50 and 25 min. A change of sky read sooner after a seen start is not the orbit.
 */
export const MIN_PHASE_SECONDS: Record<"sunlit" | "eclipse", number> = { sunlit: 50 * 60, eclipse: 25 * 60 };

/**
 * The longest orbit phases: sunlight ≤ 64.3 min (96 min orbit, 33 % eclipse), an eclipse
 * ≤ 35.5 min (96 min, 37 %); plus the sky's reading delay (≤ 3 samples at entry, a few minutes of
 * charging at exit) and a margin: 68 and 40 min. A sky read for longer since a seen start is unknown.
 */
export const MAX_PHASE_SECONDS: Record<"sunlit" | "eclipse", number> = { sunlit: 68 * 60, eclipse: 40 * 60 };

/**
 * A satellite's own phase lengths, once learned (two phases of a kind, both edges seen, agreeing
 * within this): a phase then ends within this of its own length, not sooner (a voltage fault) and
 * not later (its end was missed). Its orbit repeats to the second; the sky's edges are read to
 * within a sample (measured: lengths agree within 20 s), so 2 min (6 samples) is wide.
 */
export const PHASE_WITHIN_S = 120;

/** What the rate limits may depend on besides the value they apply at. */
export interface TrackContext {
  sky: Sky;
  /** The wheel is in a momentum dump (see TrackerSpec.dump). */
  dumping: boolean;
  /** Seconds since the current sky began (as the voltage showed it). */
  skySeconds: number;
  /** The tracked value (while frozen: where the field was last trusted); the limits take the value they apply at. */
  base: number;
}

/**
 * A per-field tracker of the value the physics allows (detector-trend.ts): it follows the readings
 * smoothed over `smoothSeconds`, but never faster than `riseMax`/`fallMax` (units per second, as a
 * function of the value and the context), so a change faster than the spacecraft can produce
 * leaves it behind by more than `threshold` and is flagged. `step` (optional): a jump of at least
 * this much between two readings is a load switch or a sensor offset, and the tracker starts again
 * from the new value.
 */
export interface TrackerSpec {
  smoothSeconds: number;
  /** No healthy reading is above this in any sky (a clamp plus the sensor's noise): one that is, is of type `above`. */
  ceiling?: { value: number; why: string };
  riseMax: (tracked: number, ctx: TrackContext) => number;
  fallMax: (tracked: number, ctx: TrackContext) => number;
  threshold: number;
  /** Distance beyond the threshold where the score reaches 1. */
  span: number;
  step?: number;
  /** A rise of at least this much between two readings restarts a tracker not frozen by a fault (a bus coming back). */
  stepUp?: number;
  /**
   * Learn the field's own steady rate (e.g. a wheel's momentum build-up) with this time constant,
   * from readings whose rate is at most `ignoreAbove` (a dump is not the steady rate); the limits
   * then apply around it. Until `trustAfterSeconds` of readings are learned (one orbit: the mean
   * over a whole orbit cancels the orbital cycle) the limits widen by `untrusted` either way.
   */
  slope?: { seconds: number; ignoreAbove: number; trustAfterSeconds: number; untrusted: number };
  /**
   * A momentum dump: it starts only when the tracked value leaves `start` (the momentum
   * management's limits, less the orbital cycle), and lasts until the value is within `endWithin`
   * of `target` and moves towards it slower than `endBelowRate` (the cycle hides where exactly
   * it stops); only then do the rate limits allow the dump's rate towards the target. A dump seen
   * moving at `minRate` or faster goes on at least that fast until within `endWithin` of the
   * target (the momentum management does not stop half-way): a wheel that stops short of it reads
   * a sensor bias, and the tracker moving on without it flags the reading.
   */
  dump?: { start: [number, number]; target: number; endWithin: number; endBelowRate: number; minRate: number };
  /**
   * Allow the smoothed tracker's lag behind a value moving at its limit (rate × smoothSeconds), on
   * the side(s) whose limits nominal readings reach (a bus cooling at its fastest in eclipse).
   */
  lagAllowance?: "below" | "both";
  /** Share of the rate limits by which the allowed envelope widens while the tracker is frozen. */
  widen: number;
  /** A tracker frozen longer than this (longer than the faults it looks for) starts again. */
  maxFreezeSeconds: number;
  /** The type of a reading above / below what the tracker allows; undefined: that side is not judged. */
  above: AnomalyType | undefined;
  below: AnomalyType | undefined;
  /** Judge the side above only in this sky (where nothing nominal can outrun the limits). */
  aboveOnlyIn?: Sky;
  /**
   * Track `value - factor * other` instead of the value: the wheel absorbs the body's momentum in a
   * slew (350 rpm per deg/s of body rate), so a slew is not a wheel anomaly.
   */
  compensate?: { field: Field; factor: number };
  /** What the rate limits stand for, for the finding's reason. */
  physics: string;
}

/**
 * Heat balance: the warmest equilibrium (sunlit with the payload on; the heater runs only in
 * eclipse), the coldest sunlit one (payload off) and the coldest (eclipse).
 */
const WARMEST_C = 42;
const WARMEST_ECLIPSE_C = 5;
const COLDEST_SUNLIT_C = 28;
const COLDEST_C = -8;
/** The shortest and the longest thermal time constant of the bus (15 and 25 min). */
const THERMAL_TAU_S = 900;
const THERMAL_TAU_MAX_S = 1500;
/** A payload session raises the equilibrium by 4 °C (+ 0.5 °C for noise): above where the bus was. */
const PAYLOAD_HEAT_C = 4.5;
/** Sensor noise and quantisation on the smoothed tracker's rate: 0.002 °C/s. */
const THERMAL_NOISE_C_S = 0.002;
/** End-of-charge clamp (upper bound) and the fastest charge time constant (6 min). */
const END_OF_CHARGE_V = 29.3;
const CHARGE_TAU_S = 360;
/**
 * An eclipse's discharge: a step of at most 0.9 V at entry (0.6 V + the load's IR drop) with a
 * 60 s time constant, then at most 2 V over the shortest eclipse (31 min) plus the heater's 0.08 V
 * step: 0.0015 V/s.
 */
export const ENTRY_STEP_V = 0.9;
const ENTRY_TAU_S = 60;
const ECLIPSE_DISCHARGE_V_S = 0.0015;
/** In eclipse nothing charges: the tracker does not rise (noise and the heater switching off stay within the threshold). */
const ECLIPSE_RISE_V_S = 0;
/**
 * Fastest fall of a sunlit bus: a payload's 0.18 V IR drop settles with the charge time constant
 * (≥ 6 min), 0.0005 V/s; + 0.0003 V/s for the noise of the smoothed tracker.
 */
const SUNLIT_FALL_V_S = 0.0008;
/**
 * Below its lowest plateau (28.72 V: 28.9 V end of charge less a payload's 0.18 V) a sunlit bus
 * charges back at least with the slowest charge time constant (10 min): it must rise.
 */
const SUNLIT_PLATEAU_MIN_V = 28.72;
const CHARGE_TAU_MAX_S = 600;
/** Momentum dumps bring the wheel back to this speed, at 3 rpm/s (3.5 with noise and cycle). */
const DUMP_TARGET_RPM = 2500;
const DUMP_RATE_RPM_S = 3.5;
/** A dump's slowest net rate: 3 rpm/s less the largest build-up (0.4), the orbital cycle (0.25) and noise. */
const DUMP_MIN_RATE_RPM_S = 2;
/** The orbital momentum cycle moves the wheel at most 200 rpm × 2π / 95 min ≈ 0.22 rpm/s. */
const WHEEL_CYCLE_RPM_S = 0.25;
/** The shortest orbit (94 min): a mean over it cancels the orbital cycle. */
const ORBIT_S = 94 * 60;
/** The largest momentum build-up from environment torques, before a satellite's own is learned. */
const WHEEL_BUILDUP_MAX_RPM_S = 0.4;

export const TRACKERS: Partial<Record<Field, TrackerSpec>> = {
  voltage: {
    smoothSeconds: 20,
    // The charger clamps the bus at its end of charge (≤ 29.2 V; 29.3 V with margin): 4 σ of noise above it no bus reads.
    ceiling: { value: END_OF_CHARGE_V + 0.12, why: "V no bus reads (the end-of-charge clamp, 29.3 V, plus 4 σ of noise)" },
    // In eclipse nothing charges the battery: the bus only rises by noise and a load switching off
    // (the heater's 0.08 V, within the threshold).
    riseMax: (v, { sky }) => (sky === "eclipse" ? ECLIPSE_RISE_V_S : Math.max(0.0005, (END_OF_CHARGE_V - v) / CHARGE_TAU_S)),
    // In sunlight the bus sits on its end-of-charge plateau (a payload's IR drop relaxes over
    // minutes); only in eclipse does it discharge, fastest at entry.
    fallMax: (_v, { sky, skySeconds }) =>
      sky === "sunlit" ? SUNLIT_FALL_V_S - Math.max(0, (SUNLIT_PLATEAU_MIN_V - _v) / CHARGE_TAU_MAX_S)
      : sky === "eclipse" ? ECLIPSE_DISCHARGE_V_S + (ENTRY_STEP_V / ENTRY_TAU_S) * Math.exp(-skySeconds / ENTRY_TAU_S)
      : ENTRY_STEP_V / ENTRY_TAU_S,
    // The largest nominal gap to the tracker: an entry's first samples judged with sunlight's
    // limits before the sky turns (0.17 + 0.12 V of its step) plus 4 σ of noise (0.12 V).
    threshold: 0.6,
    span: 4,
    widen: 0.5,
    maxFreezeSeconds: 15 * 60,
    // Above the tracker the band's 29.8 V judges (a battery charging back is never a fault here),
    // but in eclipse, where nothing charges it, a rising bus is a sensor drifting up.
    above: "DRIFT",
    aboveOnlyIn: "eclipse",
    // A rise of 1 V in one sample is no charging (an exit charges ≤ 0.14 V a sample) but the bus
    // coming back from a fault or a bias clearing: a tracker no fault froze starts again from it.
    stepUp: 1,
    below: "POWER_UNDERVOLTAGE",
    physics: "the battery charges at most (29.3 V - v)/360 s and discharges at most 0.0015 V/s in eclipse after the entry's 0.9 V step (60 s time constant), 0.0008 V/s in sunlight",
  },
  temperature: {
    smoothSeconds: 30,
    // In eclipse the warmest equilibrium is the heater's 5 °C: the bus cannot warm above it, and
    // above it the bus must cool towards it at least with the longest time constant (25 min; less
    // the noise): nothing else heats an eclipsed bus (a sensor drifting up there held it level).
    // In sunlight it warms towards 42 °C at most with the shortest time constant, and an exit's
    // transient decays: from any start (≥ -8 °C) with any time constant of 15..25 min its rate is at
    // most 50 °C / 15 min × e^(-t / 25 min) after t in sunlight. Besides, a payload session can
    // warm it 4 °C above where it was, never above the warmest equilibrium (42 °C).
    riseMax: (t, { sky, skySeconds, base }) =>
      sky === "eclipse" ? (t > WARMEST_ECLIPSE_C ? (WARMEST_ECLIPSE_C - t) / THERMAL_TAU_MAX_S + THERMAL_NOISE_C_S : Math.max(0.001, (WARMEST_ECLIPSE_C - t) / THERMAL_TAU_S))
      : Math.max(0, Math.min(base + PAYLOAD_HEAT_C, WARMEST_C) - t) / THERMAL_TAU_S +
        Math.min(Math.max(0, WARMEST_C - t), sky === "sunlit" ? (WARMEST_C - COLDEST_C) * Math.exp(-skySeconds / THERMAL_TAU_MAX_S) : Infinity) / THERMAL_TAU_S,
    // It cools at most towards the coldest equilibrium of its sky with the same time constant:
    // in sunlight 28 °C (payload off), in eclipse (or unknown) -8 °C.
    fallMax: (t, { sky }) => THERMAL_NOISE_C_S + Math.max(0, (t - (sky === "sunlit" ? COLDEST_SUNLIT_C : COLDEST_C)) / THERMAL_TAU_S),
    threshold: 2.5,
    // The coldest, fastest satellite cools at the fall limit in eclipse; no satellite warms at the
    // rise limit (42 °C is above every satellite's own sunlit equilibrium).
    lagAllowance: "below",
    span: 20,
    // A jump beyond any heater or runaway (≤ 0.12 °C/s, 2.4 °C a sample) is a sensor offset
    // changing, flagged by the rate check once; the tracker starts again from the new level.
    step: 5,
    // The full rates (at the envelope's edges): a healthy bus can move that far while a fault is
    // flagged, so a frozen tracker never traps an alarm on either side.
    widen: 1,
    maxFreezeSeconds: 60 * 60,
    above: "THERMAL_HIGH",
    below: "THERMAL_LOW",
    physics: "the heat balance warms it at most towards 5 °C in eclipse (heater on; above 5 °C it must cool towards it, 25 min time constant), in sunlight towards 42 °C as an exit's transient allows (50 °C/15 min × e^(-t/25 min)) plus a payload's 4 °C, and cools it at most towards 28 °C in sunlight, -8 °C in eclipse, with a 15 min time constant",
  },
  current: {
    smoothSeconds: 400,
    riseMax: () => 0.0001,
    fallMax: () => 0.0001,
    threshold: 0.15,
    span: 2,
    widen: 1,
    maxFreezeSeconds: 45 * 60,
    step: 0.25,
    above: "DRIFT",
    below: "DRIFT",
    physics: "loads switch in steps of at least 0.4 A (the heater) and draw a flat current in between",
  },
  wheel_speed: {
    smoothSeconds: 20,
    // In a dump it moves towards 2500 rpm at 3 rpm/s; otherwise the orbital momentum cycle moves
    // it at most 0.25 rpm/s around the satellite's own build-up rate (learned).
    riseMax: (w, { dumping }) => (dumping && w < DUMP_TARGET_RPM ? DUMP_RATE_RPM_S : WHEEL_CYCLE_RPM_S),
    fallMax: (w, { dumping }) => (dumping && w > DUMP_TARGET_RPM ? DUMP_RATE_RPM_S : WHEEL_CYCLE_RPM_S),
    slope: { seconds: 2 * 3600, ignoreAbove: 1, trustAfterSeconds: ORBIT_S, untrusted: WHEEL_BUILDUP_MAX_RPM_S },
    // Dumps start beyond 800 / 4500 rpm (measured: ± the 200 rpm cycle and noise) and stop within
    // 100 rpm of 2500 (measured: ± the cycle), where it stops moving at 3 rpm/s.
    dump: { start: [1050, 4250], target: DUMP_TARGET_RPM, endWithin: 350, endBelowRate: 1, minRate: DUMP_MIN_RATE_RPM_S },
    threshold: 150,
    // A change of 400 rpm in one sample is beyond the wheel's torque: a sensor offset, restart.
    step: 400,
    span: 2000,
    widen: 1,
    maxFreezeSeconds: 45 * 60,
    above: "DRIFT",
    below: "DRIFT",
    physics: "after the slew momentum, it moves at its learned build-up rate ± 0.25 rpm/s (± 0.65 until an orbit is learned), or 3.5 rpm/s towards 2500 rpm in a dump started beyond 1050..4250 rpm, which once moving goes on at ≥ 2 rpm/s until within 350 rpm of 2500",
    compensate: { field: "gyro", factor: 350 },
  },
};

/** A gap longer than this between two readings restarts the trackers (the state moved unobserved). */
export const MAX_GAP_SECONDS = 30 * 60;

/**
 * The satellite's own thermal cycle and the runaway latch (detector-trend.ts ThermalCycle). A
 * healthy bus repeats its temperature over every orbit: it is learned per satellite as a
 * piecewise-linear curve over the time since the sky (sunlit, eclipse) began, with knots every
 * 5 min (a 15 min time constant bends less than 0.5 °C between knots), for the longest phases
 * (sunlight ≤ 65 min of a 96 min orbit at 33 % eclipse, eclipse ≤ 36 min). Once a runaway is
 * confirmed (THERMAL_HIGH), the alarm holds while the temperature stays more than `margin` above
 * that curve plus the bus's offset from it just before (a payload session's heat, decaying with
 * the bus's 20 min time constant); it ends at the first reading back within the margin, and
 * after `maxLatchSeconds` whatever the readings (no runaway heats and cools for longer).
 */
export const CYCLE = {
  knotSeconds: 300,
  knots: { sunlit: 14, eclipse: 8 },
  /** Share of a reading's error given to its two knots (LMS): a few orbits to settle. */
  learn: 0.2,
  /** A reading's error is clipped to this before learning (healthy residuals: 99 % within 2.5 °C). */
  learnClipC: 3,
  /** Share of a nominal reading's residual taken into the bus's offset from its cycle. */
  offsetLearn: 0.2,
  offsetTauSeconds: 1200,
  /** Above the cycle by more than this (2.5 °C, the tracker's threshold) the runaway goes on. */
  margin: 2.5,
  span: 20,
  maxLatchSeconds: 60 * 60,
  /** A knot not learned yet is bridged from learned ones at most this many knots (5 min each) away. */
  bridgeKnots: 2,
  /** A payload switched on during a latch: ≥ 1 A more than at its start (payloads draw 1.2..1.8 A), warming the bus by ≤ 4.5 °C (15 min). */
  payloadStepA: 1,
  payloadHeatC: 4.5,
  payloadTauSeconds: 900,
  /**
   * After a runaway's last THERMAL_HIGH (its latch ended within the margin, or the tracker let it
   * go), the heat left over leaves within the bus's longest thermal time constant (25 min; the
   * shortest, 15 min, left the last of a long cool-down flagged): a THERMAL_LOW for cooling too
   * fast meanwhile is that heat leaving, not a new fault.
   */
  heatLeavesSeconds: THERMAL_TAU_MAX_S,
} as const;
