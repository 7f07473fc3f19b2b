/**
 * The detector's per-satellite memory: small, bounded, plain JSON, versioned. `detect()` takes one
 * and returns the next; storage keeps it as one row per satellite.
 *
 * Bound: at most {@link RECENT_LENGTH} readings (6 numbers each) plus, per field, at most 12
 * numbers, three signs and three flags, plus the sky, its clock (3 values and an edge mark), two
 * counters, the thermal cycle (22 knots), the bus's offset from it (2), a runaway latch (≤ 4),
 * the last runaway finding's time and the satellite's own phase lengths (4): under 2 KiB as JSON
 * whatever the input (checked by a fuzz test; ≤ 1.7 KiB seen in simulator runs).
 */
import { CYCLE } from "./detector-bands";
import { FIELDS, type Field, type Reading } from "./detector-types";

/** The version of {@link DetectorState}; a state of any other version is replaced by a fresh one. */
export const DETECTOR_STATE_VERSION = 2;
/** Readings kept for the stuck-sensor check (it needs the last 4 besides the current one). */
export const RECENT_LENGTH = 4;

/** One field's memory. */
export interface FieldState {
  /** The last value of this field judged nominal, and its time: the rate check's reference. */
  good?: number;
  goodTime?: number;
  /** The value last given to the tracker (after compensation), for its step check. */
  input?: number;
  /** The compensation last taken off the value (wheel: the slew's momentum, rpm). */
  offset?: number;
  /** The tracked value the physics allows (see detector-trend.ts). */
  track?: number;
  /** The tracker's learned nominal rate (units per second), for fields that have one (wheel). */
  slope?: number;
  /** Seconds of readings the learned rate rests on (capped). */
  learned?: number;
  /** A momentum dump is under way (wheel); "maybe" just after a restart, until the rate tells. */
  dump?: boolean | "maybe";
  /** Readings in a row the dump under way was seen moving at its slowest rate or faster (wheel, up to 3: then it goes on until near its target). */
  dumpSeen?: number;
  /** Time the tracker froze (its field flagged), so a stuck alarm can be bounded. */
  frozenSince?: number;
  /** How far the frozen tracker's envelope has widened above and below the expected value. */
  up?: number;
  down?: number;
  /** The side the frozen tracker's readings are on (1 above, -1 below). */
  side?: 1 | -1;
  /** A fault on this side (1 above, -1 below) has just ended: its readings are on their way back. */
  recover?: 1 | -1;
  /**
   * The value last trusted before a fault that the widening envelope let back in on its side (a
   * slow drift may go on), since when, and the fault's side: a return towards it is a recovery.
   */
  anchor?: number;
  anchorTime?: number;
  anchorSide?: 1 | -1;
  /** The field was flagged as stuck at the previous reading (its next change is a release). */
  stuck?: boolean;
  /** The field compensated with (wheel: the gyro) has been stuck since the tracker last started. */
  otherStuck?: boolean;
}

export interface DetectorState {
  v: typeof DETECTOR_STATE_VERSION;
  /** Time of the newest reading judged (epoch ms). */
  time: number;
  /** The newest readings, oldest first, at most {@link RECENT_LENGTH}. */
  recent: Reading[];
  fields: Partial<Record<Field, FieldState>>;
  /** Sunlight or eclipse as the bus voltage last showed it (see detector-bands.ts Sky). */
  sky?: "sunlit" | "eclipse" | "unknown";
  /** The last known sky (sunlit or eclipse), since when (epoch ms), and when it was last seen. */
  skyKnown?: "sunlit" | "eclipse";
  skySince?: number;
  knownTime?: number;
  /**
   * The sky's clock started at a change of sky that was seen (so it tells the orbit's phase), or
   * "timed": sunlight known from the longest eclipse's end, its start within minutes (held by the
   * orbit's timing, too loose for the thermal cycle).
   */
  skyEdge?: boolean | "timed";
  /**
   * The satellite's own temperature over its orbit (see CYCLE in detector-bands.ts): knots in °C
   * every 5 min since the sunlit / eclipse phase began, null until a reading has come near.
   */
  cycle?: ThermalCycle;
  /** The last nominal temperature's offset from its cycle (smoothed) and when it was seen. */
  cycleOffset?: { value: number; time: number };
  /**
   * A confirmed thermal runaway: since when, the bus's offset from its cycle just before, the bus
   * current then, and since when a payload has been on beyond it.
   */
  latch?: { since: number; offset: number; load?: number; loadSince?: number };
  /**
   * The satellite's own sunlit and eclipse lengths (s) measured between seen edges, and how many
   * measurements in a row agreed (capped at 3; trusted from 2, see PHASE_WITHIN_S).
   */
  phases?: Partial<Record<"sunlit" | "eclipse", { s: number; n: number }>>;
  /** The time of the temperature's last THERMAL_HIGH finding (kept for the longest runaway). */
  heat?: number;
  /** Readings judged with this state (capped), for the verdict's confidence. */
  seen: number;
}

export interface ThermalCycle {
  sunlit: (number | null)[];
  eclipse: (number | null)[];
}

/** The state before a satellite's first reading. */
export function freshState(): DetectorState {
  return { v: DETECTOR_STATE_VERSION, time: Number.NEGATIVE_INFINITY, recent: [], fields: {}, seen: 0 };
}

/**
 * The state to judge with: `state` when it is one this version wrote, else a fresh one (first
 * reading, a state from an older detector, or anything malformed).
 * @example usableState(undefined).seen // 0
 */
export function usableState(state: unknown): DetectorState {
  if (typeof state !== "object" || state === null) return freshState();
  const s = state as Partial<DetectorState>;
  const ok =
    s.v === DETECTOR_STATE_VERSION &&
    (typeof s.time === "number" || s.time === null) &&
    Array.isArray(s.recent) &&
    s.recent.length <= RECENT_LENGTH &&
    typeof s.fields === "object" &&
    s.fields !== null &&
    typeof s.seen === "number";
  if (!ok) return freshState();
  // JSON turns -Infinity into null: a stored fresh state comes back with time null.
  const out: DetectorState = { ...(s as DetectorState), time: typeof s.time === "number" ? s.time : Number.NEGATIVE_INFINITY };
  // The thermal cycle and latch are optional: a malformed one is dropped, the rest kept.
  if (out.cycle !== undefined && !cycleOk(out.cycle)) delete out.cycle;
  if (out.cycleOffset !== undefined && !(typeof out.cycleOffset?.value === "number" && typeof out.cycleOffset?.time === "number")) delete out.cycleOffset;
  if (out.latch !== undefined && !(typeof out.latch?.since === "number" && typeof out.latch?.offset === "number")) delete out.latch;
  if (out.heat !== undefined && typeof out.heat !== "number") delete out.heat;
  if (out.phases !== undefined && !phasesOk(out.phases)) delete out.phases;
  return out;
}

function phasesOk(phases: unknown): boolean {
  if (typeof phases !== "object" || phases === null) return false;
  const p = phases as Record<string, unknown>;
  return Object.keys(p).every((k) => (k === "sunlit" || k === "eclipse") && typeof (p[k] as { s?: unknown })?.s === "number" && typeof (p[k] as { n?: unknown })?.n === "number");
}

function cycleOk(cycle: unknown): boolean {
  if (typeof cycle !== "object" || cycle === null) return false;
  const c = cycle as Partial<ThermalCycle>;
  const knots = (k: unknown, n: number) => Array.isArray(k) && k.length === n && k.every((x) => x === null || typeof x === "number");
  return knots(c.sunlit, CYCLE.knots.sunlit) && knots(c.eclipse, CYCLE.knots.eclipse);
}

/** The known fields of a stored field map (drops anything else a state may carry). */
export function knownFields(fields: DetectorState["fields"]): DetectorState["fields"] {
  const out: DetectorState["fields"] = {};
  for (const f of FIELDS) if (fields[f]) out[f] = { ...fields[f] };
  return out;
}
