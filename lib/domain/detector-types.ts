/**
 * The detector's vocabulary: what a reading is, the closed sets of fields, checks and anomaly
 * types, and the shape of a verdict. Shared by the detector's modules and its callers.
 */

/** A telemetry point as the detector sees it; `time` is epoch milliseconds (from the point). */
export interface Reading {
  voltage: number;
  temperature: number;
  gyro: number;
  current?: number;
  wheel_speed?: number;
  time: number;
}

export type Field = "voltage" | "temperature" | "gyro" | "current" | "wheel_speed";

/** Every field, in the order the detector judges them. */
export const FIELDS: readonly Field[] = ["voltage", "temperature", "gyro", "current", "wheel_speed"];

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

/**
 * The checks a finding comes from: the closed set of the `detector` label. `drift` is the
 * per-satellite tracker (slow change beyond what the physics allows, see detector-trend.ts).
 */
export const DETECTORS = ["limit", "rate", "stuck", "drift"] as const;

export type Check = (typeof DETECTORS)[number];

export interface Finding {
  field: Field;
  check: Check;
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
  /** 0..1: how much evidence the verdict rests on (fields present, state available). */
  confidence: number;
}

export const clamp01 = (x: number): number => Math.min(1, Math.max(0, x));
export const round = (x: number, digits = 4): number => Math.round(x * 10 ** digits) / 10 ** digits;
