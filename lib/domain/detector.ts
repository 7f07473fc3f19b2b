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
import { CYCLE, MAX_PHASE_SECONDS, MIN_PHASE_SECONDS, CHARGING_ONSET_V, CHARGING_RISE_V, ECLIPSE_FALL_V, ENTRY_ONSET_V, ENTRY_STEP_V, MAX_CHARGE_STEP_V, MAX_GAP_SECONDS, MAX_UNKNOWN_SKY_MS, PHASE_WITHIN_S, SUNLIT_MIN_V, TRACKERS, type Sky } from "./detector-bands";
import { limitFinding, rateFinding, stuckFinding } from "./detector-checks";
import { DETECTOR_STATE_VERSION, RECENT_LENGTH, knownFields, usableState, type DetectorState, type FieldState } from "./detector-state";
import { cycleAt, learnCycle, NO_ANCHOR, restarted, returnsToAnchor, track } from "./detector-trend";
import { FIELDS, clamp01, round, type Detection, type Finding, type Reading } from "./detector-types";

export { BANDS, TRACKERS } from "./detector-bands";
export { DETECTOR_STATE_VERSION, freshState, usableState, type DetectorState, type FieldState } from "./detector-state";
export { DETECTORS, FIELDS, type AnomalyType, type Check, type Detection, type Field, type Finding, type Reading } from "./detector-types";

export const ANOMALY_THRESHOLD = 0.5;
/** An eclipse entry's step is judged over this many samples (0.38 V of its 0.6 V). */
const ENTRY_SAMPLES = 3;
/** `seen` is capped: it only feeds the confidence, which saturates at 5. */
const SEEN_CAP = 1000;

/** The sky's clock in a state: the last known sky, since when, when last seen, and whether its start was seen. */
type SkyClock = Pick<DetectorState, "skyKnown" | "skySince" | "knownTime" | "skyEdge">;

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
  const clockBefore: SkyClock = gap ? {} : before;
  const read = skyOf(current, recent, skyBefore);
  // Back on the plateau in one jump from a known eclipse: that eclipse was misread (see phaseLasts).
  const skyMisread = clockBefore.skyKnown === "eclipse" && read === "sunlit" && misreadEclipse(current.voltage, current.voltage - (recent.at(-1)?.voltage ?? current.voltage));
  // The satellite's own phase lengths outlive a gap (its orbit goes on).
  const phases = before.phases;
  let sky = phaseEnds(phaseLasts(read, clockBefore, current.time, skyMisread, phases), clockBefore, current.time, phases);
  // Since when the sky is what it is: an eclipse entry's step and an exit's warming decay from there.
  const skySeconds = sky === "unknown" ? 0 : (current.time - skyClock(sky, clockBefore, current.time, phases).skySince!) / 1000;
  // The thermal cycle outlives a gap (it is the satellite's own); its offset and a latch do not.
  let cycle = before.cycle;
  let cycleOffset = gap ? undefined : before.cycleOffset;
  let latch = gap ? undefined : before.latch;
  let heat = gap ? undefined : before.heat;
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
    let stepped = false;
    const spec = TRACKERS[field];
    if (spec) {
      const released = memory.stuck === true && !stuck;
      const comp = spec.compensate;
      // Compensate with the other field's last nominal value (judged just before: a gyro spike
      // is not a slew, so it must not move the wheel's tracked value).
      const other = comp ? fields[comp.field]?.good : undefined;
      let offset = comp && other !== undefined ? comp.factor * other : 0;
      // The other field's value counts as the body's motion only once it was nominal at this reading
      // and the one before: a spike's second point, plausible from its first, is no slew; until
      // then the last compensation stands.
      const otherNow = comp ? fields[comp.field] : undefined;
      const steady = otherNow?.goodTime === current.time && before.fields[comp?.field ?? field]?.goodTime === recent.at(-1)?.time;
      // Not yet steady, the compensation that leaves the wheel's input nearer its tracked value
      // is the body's motion: in a slew the wheel absorbs the body's momentum (both sensors move
      // together, even while a spike kept the gyro from being steady), and a spike moves neither.
      const agrees = memory.track !== undefined && Math.abs(value - offset - memory.track) < Math.abs(value - (memory.offset ?? 0) - memory.track);
      if (comp && !gap && !steady && memory.offset !== undefined && !agrees) offset = memory.offset;
      const input = value - offset;
      const result = track(field, spec, input, gap ? 0 : seconds, current.time, memory, gap ? undefined : memory.input, gap || released, sky, skySeconds);
      // While the other field was stuck, its compensation was a stuck value (a slew it hid moved
      // the tracked value): once it is steady again, the tracker starts again from the input.
      const otherStuck = comp !== undefined && (otherNow?.stuck === true || memory.otherStuck === true);
      const otherBack = otherStuck && steady && otherNow?.stuck !== true;
      if (otherBack) {
        result.finding = undefined;
        result.memory = restarted(result.memory, input);
      }
      result.memory.otherStuck = otherStuck && !otherBack ? true : undefined;
      result.memory.input = input;
      // Only a jump beyond the physics (the rate check, the tracker's step) can be a bias clearing.
      const jumped = own.some((f) => f.check === "rate") || result.restarted === "step";
      if (jumped && !gap && returnsToAnchor(spec, memory, input, memory.input, current.time, { sky, skySeconds, dumping: false, base: memory.anchor ?? input })) {
        // Back to where the field was last trusted: the fault's bias cleared. The jump is no new
        // fault, and the tracker starts again from it.
        dropFindings(own, (f) => f.check === "rate");
        result.finding = undefined;
        result.memory = { ...restarted(result.memory, input), recover: undefined, ...NO_ANCHOR };
      }
      // The temperature judged meanwhile against an eclipse's heat balance was judged on a misread
      // sky: its tracker starts again from the reading (the bus was sunlit all along).
      if (skyMisread && field === "temperature" && (result.finding !== undefined || memory.frozenSince !== undefined)) {
        result.finding = undefined;
        result.memory = { ...restarted(result.memory, input), recover: undefined };
      }
      stepped = result.restarted === "step";
      if (result.finding) own.push(result.finding);
      // Another check flagged the value: the tracker must not follow it either (unless it has just
      // started again from it: a sensor offset step is flagged by the rate check once, then tracked).
      // It freezes on the reading's side, so that a reading past the other side ends the fault.
      const side = memory.side ?? (memory.track !== undefined && input < memory.track ? -1 : 1);
      next = result.finding || result.restarted === "step" || own.length === 0 ? result.memory : { ...memory, frozenSince: memory.frozenSince ?? current.time, side };
      if (comp) next = { ...next, offset: round(offset, 2) };
    }
    if (field === "temperature") {
      // Where in its orbit the bus is: the sky as judged after this reading's voltage (the voltage
      // is judged first, and a flagged voltage leaves the sky unknown), else the last known sky and
      // its clock if seen within MAX_UNKNOWN_SKY_MS; only a phase whose start was seen counts.
      const phase = cyclePhase(sky, skySeconds, clockBefore, current.time, phases);
      const expected = phase && cycleAt(cycle, phase.sky, phase.seconds);
      // A jump beyond any heat balance in one sample (a sensor step, a bias clearing) says the
      // readings were not the bus's heat: a latch ends there.
      const runaway = runawayLatch(value, current.time, own, expected, stepped ? undefined : latch, cycleOffset, current.current);
      latch = runaway.latch;
      if (runaway.finding) own.push(runaway.finding);
      // The runaway's heat leaves after its latch too: a bus that ran hot within the longest
      // runaway (its last THERMAL_HIGH) cools faster than a healthy one, down to where it was
      // (its own cycle, where known: below it, the fall is no heat leaving).
      if (own.some((f) => f.type === "THERMAL_HIGH")) heat = current.time;
      const cooling = heat !== undefined && (current.time - heat) / 1000 <= CYCLE.heatLeavesSeconds && own.some((f) => f.type === "THERMAL_LOW" && f.check === "drift") && (expected === undefined || value >= expected - CYCLE.margin);
      if (runaway.dropLow || runaway.ended || cooling) {
        // The runaway's cool-down falls faster than a healthy bus: not THERMAL_LOW; and once it is
        // back within the margin, the tracker starts again from the reading (its heat leaving).
        dropFindings(own, (f) => f.type === "THERMAL_LOW" && f.check === "drift");
        if (own.every((f) => f.check !== "drift")) next = { ...restarted(next, value), recover: 1 };
      }
      if (own.length === 0 && latch === undefined && phase) {
        if (expected !== undefined) {
          const residual = value - expected;
          const fresh = cycleOffset !== undefined && current.time - cycleOffset.time <= OFFSET_FRESH_MS;
          cycleOffset = { value: round(fresh ? cycleOffset!.value + CYCLE.offsetLearn * (residual - cycleOffset!.value) : residual, 2), time: current.time };
        }
        cycle = learnCycle(cycle, phase.sky, phase.seconds, value);
      }
    }
    const flagged = own.length > 0;
    // A flagged voltage (a collapse, a drift) says nothing about the sky: judge as if unknown.
    if (field === "voltage" && flagged) sky = "unknown";
    fields[field] = { ...next, ...(flagged ? {} : { good: value, goodTime: current.time }), stuck: stuck !== undefined };
    findings.push(...own);
  }
  const clock = skyClock(sky, clockBefore, current.time, phases);
  // A phase whose start and end were both seen measured the satellite's own length of it.
  const measured = clock.skySince === current.time && clock.skyEdge === true && clockBefore.skyEdge === true && clockBefore.skyKnown !== undefined;
  const ownPhases = measured ? learnPhase(before.phases, clockBefore.skyKnown!, (current.time - clockBefore.skySince!) / 1000) : before.phases;
  const nextState: DetectorState = {
    v: DETECTOR_STATE_VERSION,
    time: current.time,
    recent: [...recent, current].slice(-RECENT_LENGTH),
    fields,
    sky,
    ...clock,
    ...(ownPhases && { phases: ownPhases }),
    ...(cycle && { cycle }),
    ...(cycleOffset && { cycleOffset }),
    ...(latch && { latch }),
    ...(heat !== undefined && current.time - heat <= CYCLE.heatLeavesSeconds * 1000 && { heat }),
    seen: Math.min(SEEN_CAP, before.seen + 1),
  };
  return { detection: verdict(current, findings, before.seen), state: nextState };
}

/**
 * No orbit phase ends sooner than the shortest of its kind (MIN_PHASE_SECONDS), or than this
 * satellite's own length of it less PHASE_WITHIN_S once learned (phaseMin): a change of sky
 * read from the voltage sooner after a phase's seen start is a voltage fault (a downward drift in
 * sunlight is no eclipse), and the sky stays what it was, however long the voltage was flagged
 * meanwhile (an upward drift in eclipse must not end it). A `misread` eclipse ends at once.
 */
function phaseLasts(sky: Sky, clock: SkyClock, now: number, misread: boolean, phases: Phases): Sky {
  const known = clock.skyKnown;
  if (sky === "unknown" || known === undefined || sky === known || !clock.skyEdge || clock.skySince === undefined || clock.knownTime === undefined) return sky;
  if (misread) return sky;
  return (now - clock.skySince) / 1000 < phaseMin(known, phases) ? known : sky;
}

type Phases = DetectorState["phases"];

/** The satellite's own length of a phase, once two measurements in a row agreed. */
function ownLength(phases: Phases, kind: "sunlit" | "eclipse"): number | undefined {
  const p = phases?.[kind];
  return p !== undefined && p.n >= 2 ? p.s : undefined;
}

/** The shortest a phase lasts: the satellite's own length less PHASE_WITHIN_S, else the shortest of its kind. */
function phaseMin(kind: "sunlit" | "eclipse", phases: Phases): number {
  const own = ownLength(phases, kind);
  return own === undefined ? MIN_PHASE_SECONDS[kind] : Math.max(MIN_PHASE_SECONDS[kind], own - PHASE_WITHIN_S);
}

/** The longest a phase lasts: the satellite's own length plus PHASE_WITHIN_S, else the longest of its kind. */
function phaseMax(kind: "sunlit" | "eclipse", phases: Phases): number {
  const own = ownLength(phases, kind);
  return own === undefined ? MAX_PHASE_SECONDS[kind] : Math.min(MAX_PHASE_SECONDS[kind], own + PHASE_WITHIN_S);
}

/**
 * A measured length taken into the satellite's own: averaged with it when they agree within
 * PHASE_WITHIN_S (and counted), else it starts again from the new one (one odd phase, say a
 * fault that read as an edge, never becomes trusted alone).
 */
function learnPhase(phases: Phases, kind: "sunlit" | "eclipse", seconds: number): Phases {
  const p = phases?.[kind];
  const next = p !== undefined && Math.abs(seconds - p.s) <= PHASE_WITHIN_S ? { s: round((p.s + seconds) / 2, 0), n: Math.min(3, p.n + 1) } : { s: round(seconds, 0), n: 1 };
  return { ...phases, [kind]: next };
}

/**
 * Back on the end-of-charge plateau in one jump beyond any charging (≤ 0.25 V a sample), the bus
 * was not discharging: the eclipse it leaves was a misread voltage (a downward drift read as an
 * entry, its bias clearing), not the orbit.
 */
function misreadEclipse(voltage: number, rise: number): boolean {
  return voltage >= SUNLIT_MIN_V && rise > MAX_CHARGE_STEP_V;
}

/**
 * No orbit phase lasts longer than the longest of its kind (MAX_PHASE_SECONDS), or than this
 * satellite's own length of it plus PHASE_WITHIN_S once learned (phaseMax): a sky read from
 * the voltage for longer since its seen start missed its end (a voltage fault hid it, such as a
 * downward drift hiding an exit's charging). After the longest eclipse the bus is sunlit (from an
 * unseen start); after the longest sunlight nobody knows (its start may have been misread), but
 * after this satellite's own sunlight it is in eclipse (an entry a voltage fault hid).
 */
function phaseEnds(sky: Sky, clock: SkyClock, now: number, phases: Phases): Sky {
  if (sky === "unknown" || sky !== clock.skyKnown || !clock.skyEdge || clock.skySince === undefined) return sky;
  if ((now - clock.skySince) / 1000 <= phaseMax(sky, phases)) return sky;
  return sky === "eclipse" ? "sunlit" : ownLength(phases, "sunlit") !== undefined ? "eclipse" : "unknown";
}

/** Removes the findings that `match`, in place. */
function dropFindings(findings: Finding[], match: (f: Finding) => boolean): void {
  for (let k = findings.length - 1; k >= 0; k--) if (match(findings[k]!)) findings.splice(k, 1);
}

/** A bus's offset from its cycle is forgotten after 10 min without a nominal temperature. */
const OFFSET_FRESH_MS = 10 * 60_000;

/** Sunlit or eclipse and the seconds since it began, for the thermal cycle; undefined when nobody knows. */
function cyclePhase(sky: Sky, skySeconds: number, clock: SkyClock, now: number, phases: Phases): { sky: "sunlit" | "eclipse"; seconds: number } | undefined {
  // Only a phase whose start was seen tells where in the orbit the bus is.
  const edge = skyClock(sky, clock, now, phases).skyEdge;
  if (edge !== true) return undefined;
  if (sky !== "unknown") return { sky, seconds: skySeconds };
  if (clock.skyKnown === undefined || clock.skySince === undefined || clock.knownTime === undefined || now - clock.knownTime > MAX_UNKNOWN_SKY_MS) return undefined;
  return { sky: clock.skyKnown, seconds: (now - clock.skySince) / 1000 };
}

/**
 * The runaway latch (alarm hysteresis, see CYCLE): a THERMAL_HIGH finding starts it where the
 * satellite's cycle is known; while latched, a reading more than the margin above the cycle (plus
 * the bus's decaying offset from it before the fault) is still the runaway, the first one within
 * the margin ends it, and so does the cycle's being unknown or the latch's outlasting any runaway.
 */
function runawayLatch(
  value: number,
  now: number,
  own: readonly Finding[],
  expected: number | undefined,
  before: DetectorState["latch"],
  offset: DetectorState["cycleOffset"],
  load: number | undefined,
): { latch: DetectorState["latch"]; finding?: Finding; dropLow?: boolean; ended?: boolean } {
  const heat = own.some((f) => f.type === "THERMAL_HIGH");
  let latch = before;
  if (latch && (expected === undefined || (now - latch.since) / 1000 > CYCLE.maxLatchSeconds)) return { latch: undefined };
  if (!latch && heat && expected !== undefined) latch = { since: now, offset: offset !== undefined && now - offset.time <= OFFSET_FRESH_MS ? offset.value : 0, ...(load !== undefined && { load }) };
  if (!latch || expected === undefined) return { latch: undefined };
  // A payload switched on since the latch began (the bus current up by a payload's ≥ 1 A) warms
  // the bus by up to its 4.5 °C with the shortest thermal time constant: allowed on top.
  const payloadOn = load !== undefined && latch.load !== undefined && load - latch.load >= CYCLE.payloadStepA;
  const loadSince = payloadOn ? (latch.loadSince ?? now) : undefined;
  latch = { since: latch.since, offset: latch.offset, ...(latch.load !== undefined && { load: latch.load }), ...(loadSince !== undefined && { loadSince }) };
  const payload = loadSince !== undefined ? CYCLE.payloadHeatC * (1 - Math.exp(-(now - loadSince) / 1000 / CYCLE.payloadTauSeconds)) : 0;
  const baseline = expected + latch.offset * Math.exp(-(now - latch.since) / 1000 / CYCLE.offsetTauSeconds) + payload;
  const excess = value - baseline;
  if (excess <= CYCLE.margin) return { latch: undefined, ended: before !== undefined };
  const since = new Date(latch.since).toISOString();
  const finding: Finding | undefined = heat
    ? undefined
    : {
        field: "temperature",
        check: "drift",
        score: clamp01(0.5 + (0.5 * (excess - CYCLE.margin)) / CYCLE.span),
        type: "THERMAL_HIGH",
        reason: `temperature ${value} is ${round(excess, 2)} above the ${round(baseline, 2)} this satellite's own orbit cycle expects (thermal runaway latched since ${since}; it ends within ${CYCLE.margin} of the cycle)`,
      };
  return { latch, finding, dropLow: true };
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
  // No entry falls by its whole step in one sample (0.9 V; 0.26 V in its first 20 s): a larger
  // fall is a voltage fault starting or ending (an upward drift's bias clearing), not the orbit.
  const entry = [...recent.slice(-ENTRY_SAMPLES).map((r) => r.voltage), v];
  if (Math.max(...entry) - v >= ECLIPSE_FALL_V && entry.every((x, k) => k === 0 || entry[k - 1]! - x < ENTRY_STEP_V)) return "eclipse";
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
function skyClock(sky: Sky, before: SkyClock, now: number, phases: Phases): SkyClock {
  if (sky === "unknown") return { skyKnown: before.skyKnown, skySince: before.skySince, knownTime: before.knownTime, skyEdge: before.skyEdge };
  const recent = before.skySince !== undefined && before.knownTime !== undefined && now - before.knownTime <= MAX_UNKNOWN_SKY_MS;
  // The same sky after an unknown spell shorter than the shortest phase of the other kind is the
  // same phase: the other could not have come and gone meanwhile.
  const other = sky === "sunlit" ? "eclipse" : "sunlit";
  const same = before.skyKnown === sky && before.skySince !== undefined && before.knownTime !== undefined && now - before.knownTime <= MIN_PHASE_SECONDS[other] * 1000;
  if (same) return { skyKnown: sky, skySince: before.skySince, knownTime: now, skyEdge: before.skyEdge };
  // A new phase: its start is known to the sample only if the other sky was seen just before
  // (not after a gap or a long unknown spell, when it may have begun unobserved) and had lasted
  // as long as a phase of its kind does (a shorter one was a misread voltage, not the orbit) and
  // no longer (a longer one missed its end: this one began unseen).
  const lasted = (now - before.skySince!) / 1000;
  const seen = recent && before.skyKnown !== undefined && lasted >= MIN_PHASE_SECONDS[before.skyKnown] && lasted <= phaseMax(before.skyKnown, phases);
  // A phase forced by the longest of the one before (phaseEnds) began within minutes of now: too
  // loose for the thermal cycle, but its length still holds (phaseLasts): "timed".
  const forced = before.skyKnown === "eclipse" ? sky === "sunlit" : sky === "eclipse" && ownLength(phases, "sunlit") !== undefined;
  const timed = recent && forced && before.skyEdge !== undefined && before.skyKnown !== undefined && lasted > phaseMax(before.skyKnown, phases);
  return { skyKnown: sky, skySince: now, knownTime: now, skyEdge: seen ? true : timed ? "timed" : undefined };
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
