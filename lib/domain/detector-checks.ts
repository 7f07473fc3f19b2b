/**
 * The point checks: a reading against its field's band, against the field's last nominal value
 * (rate of change), and against the last readings (a stuck sensor). Pure; each finding says why.
 */
import { BANDS } from "./detector-bands";
import type { FieldState } from "./detector-state";
import { FIELDS, clamp01, round, type AnomalyType, type Field, type Finding, type Reading } from "./detector-types";

/** A sensor repeating the exact same value this many times while others move is stuck. */
export const STUCK_MIN_REPEATS = 5;

/** The reading outside its nominal band, scored by how far. */
export function limitFinding(field: Field, value: number): Finding | undefined {
  const band = BANDS[field];
  if (value >= band.low && value <= band.high) return undefined;
  const below = value < band.low;
  const distance = below ? band.low - value : value - band.high;
  return {
    field,
    check: "limit",
    score: clamp01(0.5 + (0.5 * distance) / band.span),
    type: limitType(field, below),
    reason: `${field} ${value} is ${below ? "below" : "above"} the nominal ${band.low}..${band.high}`,
  };
}

function limitType(field: Field, below: boolean): AnomalyType {
  switch (field) {
    case "voltage":
      return below ? "POWER_UNDERVOLTAGE" : "POWER_OVERVOLTAGE";
    case "temperature":
      return below ? "THERMAL_LOW" : "THERMAL_HIGH";
    case "gyro":
      return "ATTITUDE_RATE";
    case "current":
      return "POWER_OVERCURRENT";
    case "wheel_speed":
      return "WHEEL_OVERSPEED";
  }
}

/**
 * The change of a field per second, judged against its last *nominal* value and against each of
 * the last readings (the state's `recent`): a change is implausible only when it is implausible
 * from all of them. The nominal value keeps a fault's end from looking like a jump (a reading back
 * to normal after a spike or a stuck spell is close to the value before it); the last readings
 * (each judged over the time since the newest) keep a real change that was first flagged from
 * being flagged again and again (the reading after it agrees with it), and make a return to the
 * level of a few samples ago a recovery, not a jump — even when a glitch's first, smaller points
 * were plausible and became the nominal value (a small gyro spike's end).
 */
export function rateFinding(field: Field, value: number, time: number, memory: FieldState | undefined, recent: readonly Reading[]): Finding | undefined {
  if (memory?.good === undefined || memory.goodTime === undefined) return undefined;
  const band = BANDS[field];
  const rateFrom = (from: number, fromTime: number) => {
    if (band.fallsOnly && value >= from) return 0;
    // Points closer than 1 s apart are judged over 1 s, so a burst of samples is not a spike.
    return Math.abs(value - from) / Math.max(1, (time - fromTime) / 1000);
  };
  const rate = rateFrom(memory.good, memory.goodTime);
  if (rate <= band.maxRatePerSecond) return undefined;
  // Against the last readings, the change is judged over the time since the newest of them (as
  // if made in one step): an older reading's longer time must not make any jump plausible.
  const lastTime = recent.at(-1)?.time;
  if (lastTime !== undefined) {
    for (const r of recent) {
      const v = r[field];
      if (v !== undefined && rateFrom(v, lastTime) <= band.maxRatePerSecond) return undefined;
    }
  }
  const score = clamp01(0.5 + (0.5 * (rate - band.maxRatePerSecond)) / (band.maxRatePerSecond * 4));
  return {
    field,
    check: "rate",
    score,
    // A gyro that jumps is an attitude-rate glitch; elsewhere a jump is named as such.
    type: field === "gyro" ? "ATTITUDE_RATE" : "RATE_OF_CHANGE",
    reason: `${field} changed ${round(rate, 4)}/s since its last nominal value ${memory.good}, above the plausible ${band.maxRatePerSecond}/s`,
  };
}

/** A sensor that repeats the exact same value while its neighbours vary is stuck, not stable. */
export function stuckFinding(field: Field, current: Reading, recent: readonly Reading[]): Finding | undefined {
  if (recent.length < STUCK_MIN_REPEATS - 1) return undefined;
  const window = recent.slice(-(STUCK_MIN_REPEATS - 1));
  const value = current[field];
  if (value === undefined || !window.every((r) => r[field] === value)) return undefined;
  const othersMove = FIELDS.some((other) => other !== field && current[other] !== undefined && window.some((r) => r[other] !== current[other]));
  if (!othersMove) return undefined;
  return {
    field,
    check: "stuck",
    score: 0.6,
    type: "SENSOR_STUCK",
    reason: `${field} repeated ${value} exactly ${window.length + 1} times while other sensors changed`,
  };
}
