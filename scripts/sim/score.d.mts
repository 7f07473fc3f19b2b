/** Types of score.mjs (the simulator's scoring) and of the results JSON, for TypeScript callers. */
import type { FaultType, FaultWindow } from "./model.mjs";

export { FAULT_TYPES } from "./model.mjs";

export declare const ANOMALY_TYPE_TO_FAULT: Readonly<Record<string, FaultType>>;
export declare const ECHO_POINTS: number;
/** The echo rule's clock: points since the satellite's last fault window (0 inside one) and its fault type. */
export declare function faultClock(): { next(point: Pick<RunRecord, "satellite_id" | "fault_id" | "fault_type">): { since: number; faultType: FaultType | null } };

/** One sent point: its ground truth and the Worker's answer (null when it was refused or unsent). */
export interface RunRecord {
  index: number;
  satellite_id: string;
  time_ms: number;
  fault_id: string | null;
  fault_type: FaultType | null;
  response: {
    id: string;
    is_anomaly: boolean;
    anomaly_type: string;
    anomaly_score?: number;
    severity_level?: string;
    mission_phase?: string;
    reason?: string;
  } | null;
  feedback?: { false_positive: boolean; outcome: string } | null;
}

export interface Distribution {
  count: number;
  mean: number | null;
  median: number | null;
  min: number | null;
  max: number | null;
}

export interface TypeScore {
  windows: number;
  windows_detected: number;
  event_recall: number | null;
  fault_points: number;
  tp: number;
  fn: number;
  fp: number;
  precision: number | null;
  point_recall: number | null;
  f1: number | null;
  type_agreement: number | null;
  detection_delay_s: Distribution;
}

export interface Scores {
  points: { total: number; scored: number; unscored: number };
  overall: {
    tp: number;
    fp: number;
    fn: number;
    tn: number;
    detections: number;
    fault_points: number;
    nominal_points: number;
    precision: number | null;
    recall: number | null;
    f1: number | null;
    false_positive_rate: number | null;
    windows: number;
    windows_detected: number;
    event_recall: number | null;
    detection_delay_s: Distribution;
  };
  by_fault_type: Record<string, TypeScore>;
  false_positives: { total: number; by_anomaly_type: Record<string, number>; within_echo_of_window: number; echo_points: number; precision_excluding_echoes: number | null };
}

export declare function ratio(num: number, den: number): number | null;
export declare function f1(precision: number | null, recall: number | null): number | null;
export declare function scoreRun(run: { points: readonly RunRecord[]; faults: readonly Pick<FaultWindow, "id" | "type" | "start_ms">[]; faultTypes?: readonly string[] }): Scores;
export declare function latencyStats(millis: readonly number[]): { count: number; mean: number | null; p50: number | null; p90: number | null; p99: number | null; max: number | null };
export declare function formatTable(scores: Scores): string;

interface RequestSummary {
  requests: number;
  status: Record<string, number>;
  latency_ms: ReturnType<typeof latencyStats>;
}

/** The JSON that `npm run simulate` writes (scripts/sim/run.mjs). */
export interface SimulationResult {
  generator: string;
  run: {
    started_at: string;
    finished_at: string;
    wall_seconds: number;
    send_seconds: number;
    achieved_rate_points_per_s: number;
    url: string;
    seed: number;
    run_tag: string;
    token: string;
    api_key: boolean;
    options: Record<string, unknown>;
    notes: string[];
  };
  scenario: {
    satellites: { id: string; params: Record<string, number> }[];
    points: number;
    step_seconds: number;
    simulated_seconds_per_satellite: number;
    fault_points: number;
    faults: FaultWindow[];
  };
  ingest: {
    requests_ok: number;
    points_sent: number;
    points_answered: number;
    points_refused: number;
    points_unsent: number;
    retries: Record<string, number>;
    refusals: Record<string, number>;
    stopped_reason: string | null;
  };
  feedback: {
    disabled_reason: string | null;
    queued: number;
    sent: number;
    outcomes: Record<string, number>;
    not_sent: number;
    server: { detection_accuracy: number | null; labelled: number | null; false_positives: number | null };
    labels_false_positive: number;
    labels_true_positive: number;
  };
  phase: { resets: number; reset_failures: number; disabled_reason: string | null; initial: string | null; safe_mode_seen: number };
  requests: { ingest: RequestSummary; feedback: RequestSummary; phase: RequestSummary };
  scores: Scores;
  points?: RunRecord[];
}
