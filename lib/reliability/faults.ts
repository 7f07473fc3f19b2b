/**
 * What a chaos fault is, shared by the isolates that apply faults (./chaos.ts) and the
 * ChaosControl object that stores them.
 */
import type { BreakerState } from "./circuit-breaker";
import { DEPENDENCIES, type DependencyName } from "./dependency-health";

export const CHAOS_TYPES = ["latency", "error", "outage"] as const;
export type ChaosType = (typeof CHAOS_TYPES)[number];
/** The dependencies a fault can target (the closed set of `target`): every guarded dependency. */
export const CHAOS_TARGETS = DEPENDENCIES;
export type ChaosTarget = DependencyName;
/** The closed set of `status` labels of astra_chaos_injections_total. */
export const CHAOS_STATUSES = ["injected", "recovered", "cancelled"] as const;

export interface FaultSpec {
  type: ChaosType;
  target: ChaosTarget;
  duration_s: number;
  latency_ms?: number;
  error_rate?: number;
}

/** A fault as stored; times in ms since the epoch. */
export interface Fault {
  id: string;
  type: ChaosType;
  target: ChaosTarget;
  latencyMs: number | null;
  errorRate: number | null;
  injectedAtMs: number;
  expiresAtMs: number;
  endedAtMs: number | null;
  endReason: "expired" | "cancelled" | null;
  recoveredAtMs: number | null;
}

export interface SyncResult {
  nowMs: number;
  active: Fault[];
  /** Ended, not yet recovered, ended within RECENT_FAULT_MS. */
  unrecovered: Fault[];
  /** Fleet state of each breaker any live isolate reported. */
  fleet: Record<string, BreakerState>;
  /** The run-time log level set through the admin API (overrides LOG_LEVEL), or null. */
  logLevel: string | null;
}

