/** Types of model.mjs (the simulator's signal model), for TypeScript callers such as the tests. */

export type FaultType = "stuck_sensor" | "voltage_collapse" | "thermal_runaway" | "gyro_spike" | "gradual_drift";
export type Field = "voltage" | "temperature" | "gyro" | "current" | "wheel_speed";

export declare const FAULT_TYPES: readonly FaultType[];
export declare const FIELDS: readonly Field[];
export declare const SENSORS: Readonly<Record<Field, { sd: number; q: number; min: number; max: number }>>;
export declare const FAULT_GAP_POINTS: number;

export interface ScenarioOptions {
  seed?: number;
  satellites?: number;
  pointsPerSatellite?: number;
  stepSeconds?: number;
  faultRatePerHour?: number;
  faultTypes?: readonly FaultType[];
  epoch?: string;
  satellitePrefix?: string;
}

export declare const DEFAULT_SCENARIO: Readonly<Required<Omit<ScenarioOptions, "satellitePrefix">> & { satellitePrefix: undefined }>;

export interface FaultWindow {
  id: string;
  satellite_id: string;
  type: FaultType;
  field: Field;
  start_index: number;
  end_index: number;
  points: number;
  start_ms: number;
  end_ms: number;
  start: string;
  end: string;
  params: Record<string, number | string>;
}

export interface ScenarioPoint {
  index: number;
  satellite_id: string;
  step: number;
  time_ms: number;
  timestamp: string;
  values: Record<Field, number>;
  fault_id: string | null;
  fault_type: FaultType | null;
}

export interface Scenario {
  seed: number;
  options: Required<ScenarioOptions>;
  step_seconds: number;
  simulated_seconds: number;
  satellites: { id: string; params: Record<string, number> }[];
  faults: FaultWindow[];
  points: ScenarioPoint[];
}

export declare function generateScenario(options?: ScenarioOptions): Scenario;

export declare function payloadOf(point: ScenarioPoint): Record<Field, number> & { timestamp: string; satellite_id: string };
