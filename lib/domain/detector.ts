/**
 * Anomaly detection for one telemetry point: physical limits per field, rate of change against the
 * recent history of the same source, a stuck-sensor check, and a drift check. Pure and
 * deterministic: the same point and history always give the same verdict, with its reasons.
 */

/** A telemetry point as the detector sees it; `time` is epoch milliseconds. */
export interface Reading {
  voltage: number;
  temperature: number;
  gyro: number;
  current?: number;
  wheel_speed?: number;
  time: number;
}

export type Field = "voltage" | "temperature" | "gyro" | "current" | "wheel_speed";

/** Nominal band and the distance outside it at which a reading counts as fully anomalous. */
interface Band {
  low: number;
  high: number;
  /** Distance beyond the band where the score reaches 1. */
  span: number;
  /** Largest plausible rate of change, units per second. */
  maxRatePerSecond: number;
  /** Largest plausible change across the history window, units. */
  maxDrift: number;
}

/** Limits of a 28 V bus LEO smallsat; tuned on the simulator's training seed (see README). */
export const BANDS: Record<Field, Band> = {
  voltage: { low: 25, high: 32, span: 8, maxRatePerSecond: 1.5, maxDrift: 3 },
  temperature: { low: -10, high: 50, span: 40, maxRatePerSecond: 0.5, maxDrift: 8 },
  gyro: { low: -1.5, high: 1.5, span: 8, maxRatePerSecond: 3, maxDrift: 2 },
  current: { low: 0, high: 4.5, span: 6, maxRatePerSecond: 2, maxDrift: 3 },
  wheel_speed: { low: 0, high: 5500, span: 3000, maxRatePerSecond: 400, maxDrift: 1500 },
};

export const ANOMALY_THRESHOLD = 0.5;
const STUCK_MIN_REPEATS = 5;
const FIELDS = Object.keys(BANDS) as Field[];

export type AnomalyType =
  | "NONE"
  | "POWER_UNDERVOLTAGE"
  | "POWER_OVERVOLTAGE"
  | "THERMAL_HIGH"
  | "THERMAL_LOW"
  | "ATTITUDE_RATE"
  | "POWER_OVERCURRENT"
  | "WHEEL_OVERSPEED"
  | "RATE_OF_CHANGE"
  | "SENSOR_STUCK"
  | "DRIFT";

/** The checks a finding comes from: the closed set of the `detector` label. */
export const DETECTORS = ["limit", "rate", "stuck", "drift"] as const;

export interface Finding {
  field: Field;
  check: (typeof DETECTORS)[number];
  score: number;
  type: AnomalyType;
  reason: string;
}

export interface Detection {
  isAnomaly: boolean;
  /** 0..1: the strongest finding. */
  score: number;
  type: AnomalyType;
  findings: Finding[];
  /** 0..1: how much evidence the verdict rests on (fields present, history available). */
  confidence: number;
}

const clamp01 = (x: number) => Math.min(1, Math.max(0, x));
const round = (x: number, digits = 4) => Math.round(x * 10 ** digits) / 10 ** digits;

function limitFinding(field: Field, value: number): Finding | undefined {
  const band = BANDS[field];
  if (value >= band.low && value <= band.high) return undefined;
  const below = value < band.low;
  const distance = below ? band.low - value : value - band.high;
  const score = clamp01(0.5 + (0.5 * distance) / band.span);
  return {
    field,
    check: "limit",
    score,
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

function rateOfChange(field: Field, current: Reading, previous: Reading): Finding | undefined {
  const now = current[field];
  const before = previous[field];
  if (now === undefined || before === undefined) return undefined;
  // Points closer than 1 s apart are judged over 1 s, so a burst of samples is not a spike.
  const seconds = Math.max(1, (current.time - previous.time) / 1000);
  const rate = Math.abs(now - before) / seconds;
  const band = BANDS[field];
  if (rate <= band.maxRatePerSecond) return undefined;
  const score = clamp01(0.5 + (0.5 * (rate - band.maxRatePerSecond)) / (band.maxRatePerSecond * 4));
  return {
    field,
    check: "rate",
    score,
    type: "RATE_OF_CHANGE",
    reason: `${field} changed ${round(rate, 3)}/s, above the plausible ${band.maxRatePerSecond}/s`,
  };
}

/** A sensor that repeats the exact same value while its neighbours vary is stuck, not stable. */
function stuckFinding(field: Field, current: Reading, history: readonly Reading[]): Finding | undefined {
  const recent = history.slice(-(STUCK_MIN_REPEATS - 1));
  if (recent.length < STUCK_MIN_REPEATS - 1) return undefined;
  const value = current[field];
  if (value === undefined || !recent.every((r) => r[field] === value)) return undefined;
  const othersMove = FIELDS.some(
    (other) => other !== field && current[other] !== undefined && recent.some((r) => r[other] !== current[other]),
  );
  if (!othersMove) return undefined;
  return {
    field,
    check: "stuck",
    score: 0.6,
    type: "SENSOR_STUCK",
    reason: `${field} repeated ${value} exactly ${recent.length + 1} times while other sensors changed`,
  };
}

/** Slow drift: the change across the whole window is larger than physics allows for it. */
function driftFinding(field: Field, current: Reading, history: readonly Reading[]): Finding | undefined {
  const oldest = history[0];
  const now = current[field];
  const then = oldest?.[field];
  if (oldest === undefined || now === undefined || then === undefined || history.length < 4) return undefined;
  const band = BANDS[field];
  const change = Math.abs(now - then);
  if (change <= band.maxDrift) return undefined;
  const monotonic = [...history, current].every((r, i, all) => {
    const prev = all[i - 1]?.[field];
    const value = r[field];
    return prev === undefined || value === undefined || (now > then ? value >= prev : value <= prev);
  });
  if (!monotonic) return undefined;
  const score = clamp01(0.5 + (0.5 * (change - band.maxDrift)) / (band.maxDrift * 2));
  return {
    field,
    check: "drift",
    score,
    type: "DRIFT",
    reason: `${field} drifted ${round(change, 3)} steadily over ${history.length + 1} points (plausible: ${band.maxDrift})`,
  };
}

/**
 * Judges `current` against its physical limits and `history` (older first, same source).
 * @example detect({ voltage: 12, temperature: 20, gyro: 0, time: Date.now() }, []).type // "POWER_UNDERVOLTAGE"
 */
export function detect(current: Reading, history: readonly Reading[]): Detection {
  const previous = history.at(-1);
  const findings: Finding[] = [];
  for (const field of FIELDS) {
    const value = current[field];
    if (value === undefined) continue;
    const found = [
      limitFinding(field, value),
      previous && rateOfChange(field, current, previous),
      stuckFinding(field, current, history),
      driftFinding(field, current, history),
    ];
    for (const f of found) if (f) findings.push(f);
  }
  findings.sort((a, b) => b.score - a.score);
  const strongest = findings[0];
  const score = strongest ? round(strongest.score) : 0;
  const isAnomaly = score >= ANOMALY_THRESHOLD;
  const fieldsPresent = FIELDS.filter((f) => current[f] !== undefined).length;
  const confidence = round(clamp01(0.5 + 0.06 * fieldsPresent + 0.04 * Math.min(history.length, 5)));
  return { isAnomaly, score, type: isAnomaly && strongest ? strongest.type : "NONE", findings, confidence };
}

/** The check behind a detection: limit, rate, stuck or drift (a closed set, used as a label). */
export function detectorOf(detection: Detection): Finding["check"] {
  return detection.findings[0]?.check ?? "limit";
}
