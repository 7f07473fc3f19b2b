/** Types of offline.mjs (the offline detection harness), for TypeScript callers such as the tests. */
import type { Scenario, ScenarioOptions } from "./model.mjs";
import type { Scores } from "./score.mjs";

/** The bundled detector module: `detect(reading, state)` of lib/domain/detector.ts. */
export interface OfflineDetector {
  detect(reading: Record<string, number>, state: unknown): { detection: { isAnomaly: boolean; type: string; findings: Array<{ reason: string }> }; state: unknown };
}

export interface OfflineRecord {
  satellite_id: string;
  time_ms: number;
  fault_id: string | null;
  fault_type: string | null;
  response: { id: string; is_anomaly: boolean; anomaly_type: string; reason?: string };
}

export declare function loadDetector(entry?: string): Promise<OfflineDetector>;
export declare function scoreOffline(detector: OfflineDetector, scenarioOptions: ScenarioOptions): { scenario: Scenario; records: OfflineRecord[]; scores: Scores; states: Map<string, unknown> };

/** False positives just after fault windows, each with its class (the fault before → the anomaly type). */
export declare function echoClasses(records: OfflineRecord[]): {
  list: Array<{ satellite_id: string; time_ms: number; since: number; class: string; reason: string }>;
  counts: Record<string, number>;
};
