/**
 * What each mission phase allows, which phase changes are valid, and when an anomaly must take the
 * spacecraft to SAFE_MODE. Pure functions over the detector's verdict.
 */
import type { AnomalyType, Detection } from "./detector";
import type { MissionPhase } from "./schemas";

/** Severity levels, lowest first: the closed set of the `severity` label. */
export const SEVERITY_LEVELS = ["LOW", "MEDIUM", "HIGH", "CRITICAL"] as const;
export type SeverityLevel = (typeof SEVERITY_LEVELS)[number];
export type EscalationLevel = "NONE" | "MONITOR" | "ALERT_OPERATORS" | "SAFE_MODE";
export type Action =
  | "LOG_ONLY"
  | "ALERT_GROUND"
  | "RESET_SUBSYSTEM"
  | "SWITCH_REDUNDANT"
  | "LOAD_SHED"
  | "PAUSE_PAYLOAD"
  | "RECALIBRATE_SENSOR"
  | "ENTER_SAFE_MODE";

interface PhasePolicy {
  allowedActions: readonly Action[];
  /** Severity multiplier: in critical phases the same reading matters more. */
  severityWeight: number;
  /** Whether an anomaly may take the spacecraft to SAFE_MODE in this phase. */
  canEscalateToSafeMode: boolean;
  description: string;
}

export const PHASE_POLICIES: Record<MissionPhase, PhasePolicy> = {
  LAUNCH: {
    allowedActions: ["LOG_ONLY", "ALERT_GROUND"],
    severityWeight: 0.8,
    // Ascent loads make readings noisy and autonomous reconfiguration is unsafe until separation.
    canEscalateToSafeMode: false,
    description: "Ascent: observe and alert only",
  },
  DEPLOYMENT: {
    allowedActions: ["LOG_ONLY", "ALERT_GROUND", "RESET_SUBSYSTEM", "RECALIBRATE_SENSOR", "ENTER_SAFE_MODE"],
    severityWeight: 1.1,
    canEscalateToSafeMode: true,
    description: "Appendage deployment: conservative, escalate early",
  },
  NOMINAL_OPS: {
    allowedActions: ["LOG_ONLY", "ALERT_GROUND", "RESET_SUBSYSTEM", "SWITCH_REDUNDANT", "LOAD_SHED", "RECALIBRATE_SENSOR", "ENTER_SAFE_MODE"],
    severityWeight: 1,
    canEscalateToSafeMode: true,
    description: "Routine operations: every action available",
  },
  PAYLOAD_OPS: {
    allowedActions: ["LOG_ONLY", "ALERT_GROUND", "PAUSE_PAYLOAD", "LOAD_SHED", "RECALIBRATE_SENSOR", "ENTER_SAFE_MODE"],
    severityWeight: 1,
    canEscalateToSafeMode: true,
    description: "Payload operations: protect the payload first",
  },
  SAFE_MODE: {
    allowedActions: ["LOG_ONLY", "ALERT_GROUND", "RECALIBRATE_SENSOR"],
    severityWeight: 0.9,
    canEscalateToSafeMode: false,
    description: "Safe mode: minimal activity, ground in control",
  },
};

/** Valid phase changes without `force`. SAFE_MODE is reachable from everywhere. */
const TRANSITIONS: Record<MissionPhase, readonly MissionPhase[]> = {
  LAUNCH: ["DEPLOYMENT", "SAFE_MODE"],
  DEPLOYMENT: ["NOMINAL_OPS", "SAFE_MODE"],
  NOMINAL_OPS: ["PAYLOAD_OPS", "SAFE_MODE"],
  PAYLOAD_OPS: ["NOMINAL_OPS", "SAFE_MODE"],
  SAFE_MODE: ["NOMINAL_OPS"],
};

export interface TransitionCheck {
  allowed: boolean;
  reason: string;
}

export function checkTransition(from: MissionPhase, to: MissionPhase, force: boolean): TransitionCheck {
  if (from === to) return { allowed: false, reason: `already in ${to}` };
  if (TRANSITIONS[from].includes(to)) return { allowed: true, reason: `${from} -> ${to} is a planned transition` };
  if (force) return { allowed: true, reason: `${from} -> ${to} forced by operator (planned: ${TRANSITIONS[from].join(", ")})` };
  return { allowed: false, reason: `${from} -> ${to} is not a valid transition; from ${from} only ${TRANSITIONS[from].join(", ")} (use force to override)` };
}

export function validTransitions(from: MissionPhase): readonly MissionPhase[] {
  return TRANSITIONS[from];
}

const RECOMMENDED: Record<AnomalyType, Action> = {
  NONE: "LOG_ONLY",
  POWER_UNDERVOLTAGE: "LOAD_SHED",
  POWER_OVERVOLTAGE: "SWITCH_REDUNDANT",
  THERMAL_HIGH: "LOAD_SHED",
  THERMAL_LOW: "ALERT_GROUND",
  ATTITUDE_RATE: "RESET_SUBSYSTEM",
  POWER_OVERCURRENT: "LOAD_SHED",
  WHEEL_OVERSPEED: "RESET_SUBSYSTEM",
  RATE_OF_CHANGE: "ALERT_GROUND",
  SENSOR_STUCK: "RECALIBRATE_SENSOR",
  DRIFT: "RECALIBRATE_SENSOR",
};

export function severityLevel(score: number): SeverityLevel {
  if (score >= 0.85) return "CRITICAL";
  if (score >= 0.65) return "HIGH";
  if (score >= 0.4) return "MEDIUM";
  return "LOW";
}

export interface PolicyDecision {
  severityScore: number;
  severityLevel: SeverityLevel;
  recommendedAction: Action;
  isAllowed: boolean;
  allowedActions: readonly Action[];
  escalationLevel: EscalationLevel;
  shouldEscalateToSafeMode: boolean;
  reasoning: string[];
}

/**
 * Applies the phase's policy to a detection. A recurring anomaly weighs more: each earlier
 * occurrence of the same type from the same source adds 0.05 to the severity, up to 0.2.
 */
export function decide(detection: Detection, phase: MissionPhase, recurrenceCount: number): PolicyDecision {
  const policy = PHASE_POLICIES[phase];
  const recurrenceBoost = detection.isAnomaly ? Math.min(0.2, 0.05 * recurrenceCount) : 0;
  const severityScore = Math.round(Math.min(1, detection.score * policy.severityWeight + recurrenceBoost) * 1e4) / 1e4;
  const level = detection.isAnomaly ? severityLevel(severityScore) : "LOW";
  const wanted = RECOMMENDED[detection.type];
  const isAllowed = policy.allowedActions.includes(wanted);
  // Fall back to alerting the ground when the phase forbids what the anomaly calls for.
  const recommendedAction = isAllowed ? wanted : "ALERT_GROUND";
  const shouldEscalateToSafeMode =
    detection.isAnomaly && policy.canEscalateToSafeMode && (level === "CRITICAL" || (level === "HIGH" && recurrenceCount >= 3));
  const escalationLevel: EscalationLevel = !detection.isAnomaly
    ? "NONE"
    : shouldEscalateToSafeMode
      ? "SAFE_MODE"
      : level === "HIGH" || level === "CRITICAL"
        ? "ALERT_OPERATORS"
        : "MONITOR";
  const reasoning = [
    ...detection.findings.slice(0, 3).map((f) => f.reason),
    `phase ${phase}: ${policy.description} (severity x${policy.severityWeight})`,
    ...(recurrenceBoost > 0 ? [`seen ${recurrenceCount} time(s) recently: severity +${recurrenceBoost.toFixed(2)}`] : []),
    ...(detection.isAnomaly && !isAllowed ? [`${wanted} is not allowed in ${phase}; alerting the ground instead`] : []),
    ...(shouldEscalateToSafeMode ? [`${level} anomaly in ${phase}: escalate to SAFE_MODE`] : []),
  ];
  if (!detection.isAnomaly && detection.findings.length === 0) reasoning.unshift("all readings within nominal limits");
  return {
    severityScore,
    severityLevel: level,
    recommendedAction,
    isAllowed: detection.isAnomaly ? isAllowed : true,
    allowedActions: policy.allowedActions,
    escalationLevel,
    shouldEscalateToSafeMode,
    reasoning,
  };
}
