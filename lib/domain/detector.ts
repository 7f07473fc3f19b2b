/**
 * Anomaly detection for one telemetry point of one satellite: a pure function of the point and
 * the satellite's bounded detector state (detector-state.ts), returning the verdict and the next
 * state. Checks: each field against its nominal band, its rate of change since its last nominal
 * value, a stuck sensor, and a tracker of what the physics allows that catches slow drifts,
 * runaways and collapses (detector-trend.ts). The same point and state always give the same
 * verdict, with its reasons; time comes only from the readings.
 *
 * Order: a reading not newer than the state's newest (late, duplicate or out of order) is judged
 * against its bands only and leaves the state unchanged — the rate and trackers describe the
 * satellite's newest time. A gap longer than MAX_GAP_SECONDS restarts the trackers and the stuck
 * window (the physics moved unobserved); the rate check spans any gap by the real time between.
 */
import { CHARGING_ONSET_V, CHARGING_RISE_V, ECLIPSE_FALL_V, ENTRY_ONSET_V, MAX_CHARGE_STEP_V, MAX_GAP_SECONDS, MAX_UNKNOWN_SKY_MS, SUNLIT_MIN_V, TRACKERS, type Sky } from "./detector-bands";
import { limitFinding, rateFinding, stuckFinding } from "./detector-checks";
import { DETECTOR_STATE_VERSION, RECENT_LENGTH, knownFields, usableState, type DetectorState, type FieldState } from "./detector-state";
import { track } from "./detector-trend";
import { FIELDS, clamp01, round, type Detection, type Finding, type Reading } from "./detector-types";

export { BANDS, TRACKERS } from "./detector-bands";
export { DETECTOR_STATE_VERSION, freshState, usableState, type DetectorState, type FieldState } from "./detector-state";
export { DETECTORS, FIELDS, type AnomalyType, type Check, type Detection, type Field, type Finding, type Reading } from "./detector-types";

export const ANOMALY_THRESHOLD = 0.5;
/** An eclipse entry's step is judged over this many samples (0.38 V of its 0.6 V). */
const ENTRY_SAMPLES = 3;
/** `seen` is capped: it only feeds the confidence, which saturates at 5. */
const SEEN_CAP = 1000;

/** A verdict and the satellite's state after it. */
export interface DetectResult {
  detection: Detection;
  state: DetectorState;
}

/**
 * Judges `current` against its physical limits and the satellite's `state` (undefined for its
 * first reading; a state of another version is replaced by a fresh one).
 * @example
 * let state; // per satellite
 * const r = detect({ voltage: 12, temperature: 20, gyro: 0, time: Date.parse("2026-01-01T00:00:00Z") }, state);
 * r.detection.type; // "POWER_UNDERVOLTAGE"
 * state = r.state; // keep for the satellite's next reading
 */
export function detect(current: Reading, state: DetectorState | undefined): DetectResult {
  const before = usableState(state);
  const inOrder = current.time > before.time;
  const findings: Finding[] = [];
  if (!inOrder) {
    for (const field of FIELDS) {
      const value = current[field];
      const f = value === undefined ? undefined : limitFinding(field, value);
      if (f) findings.push(f);
    }
    return { detection: verdict(current, findings, before.seen), state: before };
  }

  const seconds = (current.time - before.time) / 1000;
  const gap = !(seconds <= MAX_GAP_SECONDS);
  const recent = gap ? [] : before.recent;
  const fields = knownFields(before.fields);
  const skyBefore: Sky = gap ? "unknown" : (before.sky ?? "unknown");
  let sky = skyOf(current, recent, skyBefore);
  // Since when the sky is what it is: an eclipse entry's step and an exit's warming decay from there.
  const clockBefore = gap ? {} : before;
  const skySeconds = sky === "unknown" ? 0 : (current.time - skyClock(sky, clockBefore, current.time).skySince!) / 1000;
  for (const field of FIELDS) {
    const value = current[field];
    if (value === undefined) continue;
    const memory: FieldState = fields[field] ?? {};
    const own: Finding[] = [];
    const limit = limitFinding(field, value);
    if (limit) own.push(limit);
    const rate = rateFinding(field, value, current.time, memory, recent);
    if (rate) own.push(rate);
    const stuck = stuckFinding(field, current, recent);
    if (stuck) own.push(stuck);
    let next: FieldState = memory;
    const spec = TRACKERS[field];
    if (spec) {
      const released = memory.stuck === true && !stuck;
      const comp = spec.compensate;
      // Compensate with the other field's last nominal value (judged just before: a gyro spike
      // is not a slew, so it must not move the wheel's tracked value).
      const other = comp ? fields[comp.field]?.good : undefined;
      const input = comp && other !== undefined ? value - comp.factor * other : value;
      const result = track(field, spec, input, gap ? 0 : seconds, current.time, memory, gap ? undefined : memory.input, gap || released, sky, skySeconds);
      result.memory.input = input;
      if (result.finding) own.push(result.finding);
      // Another check flagged the value: the tracker must not follow it either (unless it has just
      // started again from it: a sensor offset step is flagged by the rate check once, then tracked).
      // It freezes on the reading's side, so that a reading past the other side ends the fault.
      const side = memory.side ?? (memory.track !== undefined && input < memory.track ? -1 : 1);
      next = result.finding || result.restarted === "step" || own.length === 0 ? result.memory : { ...memory, frozenSince: memory.frozenSince ?? current.time, side };
    }
    const flagged = own.length > 0;
    // A flagged voltage (a collapse, a drift) says nothing about the sky: judge as if unknown.
    if (field === "voltage" && flagged) sky = "unknown";
    fields[field] = { ...next, ...(flagged ? {} : { good: value, goodTime: current.time }), stuck: stuck !== undefined };
    findings.push(...own);
  }
  const nextState: DetectorState = {
    v: DETECTOR_STATE_VERSION,
    time: current.time,
    recent: [...recent, current].slice(-RECENT_LENGTH),
    fields,
    sky,
    ...skyClock(sky, clockBefore, current.time),
    seen: Math.min(SEEN_CAP, before.seen + 1),
  };
  return { detection: verdict(current, findings, before.seen), state: nextState };
}

/**
 * Sunlight or eclipse, from the bus voltage (see Sky in detector-bands.ts): kept from the previous
 * reading until the voltage shows a change of sky. A fall from the highest of the last readings is
 * judged first (eclipse entry starts on the end-of-charge plateau, so the plateau level alone would
 * call its first minutes sunlit); charging back from the lowest is sunlight only after an eclipse
 * and only at a rate a charge can reach (a collapse's recovery jumps faster and proves nothing).
 */
function skyOf(current: Reading, recent: readonly Reading[], previous: Sky): Sky {
  const last = recent.at(-1);
  const v = current.voltage;
  if (last === undefined) return v >= SUNLIT_MIN_V ? "sunlit" : previous;
  // Over the last samples only: a slow downward drift must not look like an entry.
  if (Math.max(...recent.slice(-ENTRY_SAMPLES).map((r) => r.voltage)) - v >= ECLIPSE_FALL_V) return "eclipse";
  // A smaller fall in one sample may be an entry's first: judge as unknown until the sky is plain.
  if (last.voltage - v >= ENTRY_ONSET_V && previous === "sunlit") return "unknown";
  if (previous === "eclipse" && v >= SUNLIT_MIN_V && v >= Math.max(...recent.map((r) => r.voltage))) {
    // On the plateau and no longer falling: the eclipse was a mistake (an entry's step is over
    // before the bus is back under 28.65 V).
    return "sunlit";
  }
  if (previous !== "sunlit") {
    const volts = [...recent.map((r) => r.voltage), v];
    // Charging rises at most 0.25 V a sample; a collapse's recovery jumps faster and proves nothing.
    const steady = volts.every((x, k) => k === 0 || x - volts[k - 1]! <= MAX_CHARGE_STEP_V);
    const rise = v - Math.min(...volts);
    if (steady && rise >= CHARGING_RISE_V) return "sunlit";
    if (steady && rise >= CHARGING_ONSET_V && previous === "eclipse") return "unknown";
    if (previous === "eclipse") return "eclipse";
    // Unknown, below the plateau and discharging (below every one of a full window of readings):
    // only an eclipse discharges.
    if (v < SUNLIT_MIN_V && recent.length >= RECENT_LENGTH && v < Math.min(...recent.map((r) => r.voltage))) return "eclipse";
  }
  return v >= SUNLIT_MIN_V ? "sunlit" : previous;
}

/**
 * The last known sky and since when: an unknown spell shorter than MAX_UNKNOWN_SKY_MS (a misread
 * sample, a voltage fault of minutes: no orbit phase is that short) does not restart it.
 */
function skyClock(sky: Sky, before: Pick<DetectorState, "skyKnown" | "skySince" | "knownTime">, now: number): Pick<DetectorState, "skyKnown" | "skySince" | "knownTime"> {
  if (sky === "unknown") return { skyKnown: before.skyKnown, skySince: before.skySince, knownTime: before.knownTime };
  const continues = before.skyKnown === sky && before.skySince !== undefined && before.knownTime !== undefined && now - before.knownTime <= MAX_UNKNOWN_SKY_MS;
  return { skyKnown: sky, skySince: continues ? before.skySince : now, knownTime: now };
}

function verdict(current: Reading, findings: Finding[], seen: number): Detection {
  findings.sort((a, b) => b.score - a.score);
  const strongest = findings[0];
  const score = strongest ? round(strongest.score) : 0;
  const isAnomaly = score >= ANOMALY_THRESHOLD;
  const fieldsPresent = FIELDS.filter((f) => current[f] !== undefined).length;
  const confidence = round(clamp01(0.5 + 0.06 * fieldsPresent + 0.04 * Math.min(seen, 5)));
  return { isAnomaly, score, type: isAnomaly && strongest ? strongest.type : "NONE", findings, confidence };
}

/** The check behind a detection: limit, rate, stuck or drift (a closed set, used as a label). */
export function detectorOf(detection: Detection): Finding["check"] {
  return detection.findings[0]?.check ?? "limit";
}
