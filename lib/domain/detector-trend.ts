/**
 * The slow-change check: per field, a tracker of the value the spacecraft's physics allows. It
 * follows the readings (smoothed) but never faster than the field's physical rate limits
 * (detector-bands.ts TRACKERS), so a drift, a runaway or a collapse faster than those limits
 * leaves it behind and the gap is flagged. While its field is flagged the tracker stands still
 * (a fault never becomes the baseline) and an envelope around it widens, reading by reading, by
 * what the physics could have moved the true value meanwhile: a reading back inside it, or past
 * its other side, is nominal again at once (recovery), so a fault that has ended stops being
 * flagged and a healthy change during a fault never traps an alarm.
 */
import { BANDS, CYCLE, type Sky, type TrackContext, type TrackerSpec } from "./detector-bands";
import type { FieldState, ThermalCycle } from "./detector-state";
import { clamp01, round, type Field, type Finding } from "./detector-types";

/** The tracker's verdict on one value: a finding (or none) and the field memory to keep. */
export interface TrackResult {
  finding: Finding | undefined;
  memory: FieldState;
  /** The tracker started again from this value: after a sensor-offset `step`, or for another reason. */
  restarted?: "step" | "other";
}

/**
 * Judges `value` against the tracker in `memory` and advances it by `seconds` since the previous
 * reading. `previous` is the field's previous reading (for load-switch steps); `restart` drops the
 * tracker (first reading, long gap, a sensor just released).
 * @example track("current", spec, 2.4, 20, 1000, { track: 2.0 }, 2.01, false).finding?.type // "DRIFT"
 */
export function track(
  field: Field,
  spec: TrackerSpec,
  value: number,
  seconds: number,
  time: number,
  memory: FieldState,
  previous: number | undefined,
  restart: boolean,
  sky: Sky = "unknown",
  skySeconds = 0,
): TrackResult {
  // An anchor older than the longest fault is forgotten.
  if (memory.anchorTime !== undefined && (time - memory.anchorTime) / 1000 > spec.maxFreezeSeconds) memory = { ...memory, ...NO_ANCHOR };
  const tracked = memory.track;
  const stepped = previous !== undefined && ((spec.step !== undefined && Math.abs(value - previous) >= spec.step) || (spec.stepUp !== undefined && memory.frozenSince === undefined && value - previous >= spec.stepUp));
  // A gap or a released sensor forgets the learned rate too; a load step or a new level keeps it.
  // After a restart nobody knows whether a dump is under way: the next reading's rate tells.
  const unknownDump = spec.dump ? ("maybe" as const) : undefined;
  if (tracked === undefined || restart) return { finding: undefined, memory: { ...restarted(memory, value), slope: undefined, learned: undefined, dump: unknownDump, ...NO_ANCHOR }, restarted: "other" };
  if (stepped) return { finding: undefined, memory: { ...restarted(memory, value), dump: unknownDump }, restarted: "step" };
  const slope = memory.slope ?? 0;
  const alpha = 1 - Math.exp(-seconds / spec.smoothSeconds);
  // The smoothed rate of the readings themselves (not limited): what a learned rate rests on.
  const rawRate = seconds > 0 ? (alpha * (value - (tracked + slope * seconds))) / seconds : 0;
  const frozen = memory.frozenSince !== undefined;
  const frozenSeconds = frozen ? (time - memory.frozenSince!) / 1000 : 0;
  const expected = tracked + slope * (frozen ? frozenSeconds : seconds);
  // A learned rate is trusted once it rests on a whole orbit; until then the limits widen.
  const learn = spec.slope;
  const widenBy = learn && (memory.learned ?? 0) < learn.trustAfterSeconds ? learn.untrusted : 0;
  // While frozen, the envelope around the expected value widens at every reading by what the
  // physics could have moved the true value since the last, its rate limits taken at the
  // envelope's edges (so it approaches an equilibrium, never passes it) and times `widen`: a
  // reading back inside it is nominal again (recovery), so a nominal change during a fault never
  // traps the tracker, whatever the sky did meanwhile.
  const upBefore = frozen ? (memory.up ?? 0) : 0;
  const downBefore = frozen ? (memory.down ?? 0) : 0;
  const limits = (d: boolean) => {
    const ctx: TrackContext = { sky, dumping: d, skySeconds, base: tracked };
    return { riseMax: spec.riseMax(expected + upBefore, ctx) + widenBy, fallMax: spec.fallMax(expected - downBefore, ctx) + widenBy };
  };
  let dumping = dumpingNow(spec, tracked, memory.dump, frozen ? 0 : rawRate);
  let { riseMax, fallMax } = limits(dumping);
  const widen = (r: number, f: number) => ({
    up: frozen ? upBefore + Math.max(0, r) * seconds * spec.widen : 0,
    down: frozen ? downBefore + Math.max(0, f) * seconds * spec.widen : 0,
  });
  let { up, down } = widen(riseMax, fallMax);
  const d = spec.dump;
  if (!dumping && d && frozen && (expected + up >= d.start[1] || expected - down <= d.start[0])) {
    // A dump may have started while frozen, once the envelope reached where dumps start.
    dumping = true;
    ({ riseMax, fallMax } = limits(true));
    ({ up, down } = widen(riseMax, fallMax));
  }
  const high = expected + up;
  const low = expected - down;
  // The smoothed tracker lags a value moving at its limit by that rate times its smoothing time:
  // a reading that far ahead is still within the physics (for fields whose limits are reached by
  // nominal readings, see TrackerSpec.lagAllowance).
  const lagHigh = high + (spec.lagAllowance === "both" ? riseMax * spec.smoothSeconds : 0);
  const lagLow = low - (spec.lagAllowance ? fallMax * spec.smoothSeconds : 0);
  const outside = value > lagHigh ? value - lagHigh : value < lagLow ? value - lagLow : 0;
  const type = outside > 0 ? (spec.aboveOnlyIn === undefined || spec.aboveOnlyIn === sky ? spec.above : undefined) : spec.below;
  const side = outside > 0 ? 1 : -1;
  // A fault pushes one way: a reading past the other side of the envelope means it is over.
  const crossed = memory.side !== undefined && memory.side !== side;
  // Returning from a fault that pushed one way (recovery), the readings move back the other way
  // faster than the physics would move a healthy value (the fault's heat or bias leaves): that
  // return is not judged, until it has slowed to what the physics allows.
  const returning = memory.recover !== undefined && side === -memory.recover;
  if (spec.ceiling !== undefined && spec.above !== undefined && value > spec.ceiling.value && value <= BANDS[field].high) {
    // Above what any healthy reading reaches, whatever the sky: flagged, and the tracker stands
    // (above the band, the band's finding names it and freezes the tracker).
    return {
      finding: { field, check: "drift", score: clamp01(0.5 + (0.5 * (value - spec.ceiling.value)) / spec.span), type: spec.above, reason: `${field} ${value} is above the ${round(spec.ceiling.value, 3)} ${spec.ceiling.why}` },
      memory: { ...memory, frozenSince: memory.frozenSince ?? time, side: 1, up, down, dump: spec.dump ? dumping || undefined : undefined },
    };
  }
  // Frozen on this side by the tracker's own alarm or another check's: the deadband holds it.
  const bar = frozen && memory.side === side ? spec.threshold * CLEAR_SHARE : spec.threshold;
  if (Math.abs(outside) > bar && type !== undefined && !crossed && !returning) {
    const frozenSince = memory.frozenSince ?? time;
    // A level held longer than any fault lasts is a new operating point: start again from it.
    if ((time - frozenSince) / 1000 > spec.maxFreezeSeconds) return { finding: undefined, memory: restarted(memory, value), restarted: "other" };
    const above = outside > 0;
    return {
      finding: {
        field,
        check: "drift",
        score: clamp01(0.5 + (0.5 * Math.max(0, Math.abs(outside) - spec.threshold)) / spec.span),
        type,
        reason: `${field} ${value} is ${round(Math.abs(outside), 3)} ${above ? "above" : "below"} the ${round(above ? lagHigh : lagLow, 3)} the physics allows (${spec.physics}; threshold ${spec.threshold})`,
      },
      memory: { ...memory, frozenSince, side, up, down, dump: spec.dump ? dumping || undefined : undefined },
    };
  }
  // Back inside the envelope (or past its other side): the fault is over and its return begins.
  // Back inside on the fault's side, only because the envelope widened, the fault may go on (a
  // slow drift the physics could almost follow): the value last trusted stays as its anchor.
  if (frozen) {
    const anchor = crossed ? NO_ANCHOR : memory.anchor !== undefined ? {} : { anchor: round(tracked, 2), anchorTime: memory.frozenSince, anchorSide: memory.side };
    return { finding: undefined, memory: { ...restarted(memory, value), recover: memory.side, ...anchor }, restarted: "other" };
  }
  if (Math.abs(outside) > spec.threshold && !returning) return { finding: undefined, memory: restarted(memory, value), restarted: "other" };
  const free = alpha * (value - expected);
  // The return is over once the readings move back no faster than the physics allows.
  const stillReturning = memory.recover !== undefined && (memory.recover > 0 ? free < -fallMax * seconds : free > riseMax * seconds);
  let move = stillReturning ? free : Math.min(riseMax * seconds, Math.max(-fallMax * seconds, free));
  // A dump seen moving goes on towards its target at its slowest rate at least, whatever the
  // readings do, until near it: readings that stop short are left behind (see TrackerSpec.dump).
  const towards = d ? Math.sign(d.target - expected) : 0;
  // Seen moving for a minute (three readings): a slew's momentum moves the wheel as fast, but for a sample or two.
  const seen = memory.dumpSeen ?? 0;
  const dumpSeen = d && dumping ? (seen >= DUMP_SEEN ? seen : towards * rawRate >= d.minRate ? seen + 1 : undefined) : undefined;
  if (d && dumping && seen >= DUMP_SEEN && Math.abs(d.target - expected) >= d.endWithin) move = towards * Math.max(towards * move, d.minRate * seconds);
  const next: FieldState = {
    ...memory,
    track: expected + move,
    frozenSince: undefined,
    side: undefined,
    up: undefined,
    down: undefined,
    dump: spec.dump ? dumping || undefined : undefined,
    dumpSeen,
    recover: stillReturning ? memory.recover : undefined,
  };
  if (learn && seconds > 0 && !dumping && (move === free || widenBy > 0) && Math.abs(slope + rawRate) <= learn.ignoreAbove) {
    // A running mean over the first orbit (it cancels the orbital cycle), then an EWMA; of the
    // readings' own rate, not the limited move (a limit would teach itself).
    const learned = Math.min(LEARN_CAP_S, (memory.learned ?? 0) + seconds);
    const weight = Math.max(1 - Math.exp(-seconds / learn.seconds), seconds / learned);
    next.slope = slope + weight * rawRate;
    next.learned = learned;
  }
  return { finding: undefined, memory: next };
}

/**
 * A drift alarm clears only once its reading is back within this share of the threshold (a
 * deadband): a slow drift's readings hover at the threshold, and noise there must neither clear
 * the alarm (the tracker would start again from the drifted value) nor raise it anew.
 */
const CLEAR_SHARE = 0.75;
/** Readings in a row at a dump's rate before a dump counts as seen moving. */
const DUMP_SEEN = 3;

/** A field state's anchor fields, cleared. */
export const NO_ANCHOR = { anchor: undefined, anchorTime: undefined, anchorSide: undefined } as const;
/** The step (s) by which the envelope around an anchor is moved on: a minute, under any time constant. */
const ANCHOR_STEP_S = 60;

/**
 * Recovery to the anchor (the value last trusted before a fault the envelope let back in): a
 * reading that jumps from beyond where the physics could have taken the field from the anchor
 * since (its learned rate, the rise and fall limits over the time, and the threshold), on the
 * fault's side, back into it is the fault's bias clearing (a drift's end), not a new fault: a
 * fault moves a reading away from where the field was trusted, never back to it.
 */
export function returnsToAnchor(spec: TrackerSpec, memory: FieldState, value: number, previous: number | undefined, time: number, ctx: TrackContext): boolean {
  const { anchor, anchorTime, anchorSide } = memory;
  if (anchor === undefined || anchorTime === undefined || anchorSide === undefined || previous === undefined) return false;
  const seconds = (time - anchorTime) / 1000;
  if (seconds > spec.maxFreezeSeconds || (value - previous) * anchorSide >= 0) return false;
  // The envelope's edges moved by the rate limits (taken at the edges, in this reading's sky) in
  // steps of a minute since the anchor, around its learned rate.
  const at = { ...ctx, base: anchor };
  let high = anchor;
  let low = anchor;
  for (let t = 0; t < seconds; t += ANCHOR_STEP_S) {
    const dt = Math.min(ANCHOR_STEP_S, seconds - t);
    high += spec.riseMax(high, at) * dt;
    low -= spec.fallMax(low, at) * dt;
  }
  const drift = (memory.slope ?? 0) * seconds;
  high += drift + spec.threshold;
  low += drift - spec.threshold;
  // From beyond that envelope on the fault's side back into it.
  return value >= low && value <= high && (anchorSide > 0 ? previous > high : previous < low);
}

/** Seconds of readings counted towards a learned rate (beyond this, it is an EWMA). */
const LEARN_CAP_S = 86_400;

/** Whether a momentum dump is under way after this reading's tracked value (see TrackerSpec.dump). */
function dumpingNow(spec: TrackerSpec, tracked: number, before: FieldState["dump"], rawRate: number): boolean {
  const d = spec.dump;
  if (!d) return false;
  if (tracked <= d.start[0] || tracked >= d.start[1]) return true;
  const towards = Math.sign(d.target - tracked) * rawRate;
  if (before === "maybe") return towards > d.endBelowRate;
  // It ends near the target once the wheel no longer moves at a dump's rate towards it.
  return before === true && (Math.abs(tracked - d.target) >= d.endWithin || towards > d.endBelowRate);
}

/** The tracker started again from `value` (a learned rate is kept). */
export function restarted(memory: FieldState, value: number): FieldState {
  return { ...memory, track: value, frozenSince: undefined, side: undefined, up: undefined, down: undefined };
}

/** Where the satellite's own cycle puts a healthy bus `seconds` into a sunlit or eclipse phase; undefined until learned there. */
export function cycleAt(cycle: ThermalCycle | undefined, sky: "sunlit" | "eclipse", seconds: number): number | undefined {
  const knots = cycle?.[sky];
  if (!knots) return undefined;
  const { k, f } = knotOf(knots.length, seconds);
  // A knot not learned yet (its part of the orbit was always faulty) is bridged from the nearest
  // learned ones, at most CYCLE.bridgeKnots away on either side.
  const x = k + f;
  let lo = k;
  while (lo > k - CYCLE.bridgeKnots && lo > 0 && typeof knots[lo] !== "number") lo--;
  let hi = k + 1;
  while (hi < k + 1 + CYCLE.bridgeKnots && hi < knots.length - 1 && typeof knots[hi] !== "number") hi++;
  const a = knots[lo];
  const b = knots[hi];
  if (typeof a !== "number" || typeof b !== "number") return undefined;
  return a + ((b - a) * (x - lo)) / (hi - lo);
}

/**
 * The cycle after a nominal reading `value` at `seconds` into the phase: its two knots move
 * towards it in proportion to their interpolation weights (least mean squares), so the curve
 * learns where in the phase each temperature belongs, not just a mean per bin.
 */
export function learnCycle(cycle: ThermalCycle | undefined, sky: "sunlit" | "eclipse", seconds: number, value: number): ThermalCycle {
  const n = CYCLE.knots[sky];
  const knots = [...(cycle?.[sky] ?? new Array<number | null>(n).fill(null))];
  const { k, f } = knotOf(n, seconds);
  knots[k] ??= value;
  knots[k + 1] ??= value;
  // Clipped (Huber): an unflagged fault's first readings cannot drag the curve far.
  const raw = value - (knots[k]! + (knots[k + 1]! - knots[k]!) * f);
  const error = Math.max(-CYCLE.learnClipC, Math.min(CYCLE.learnClipC, raw));
  knots[k] = round(knots[k]! + CYCLE.learn * (1 - f) * error, 2);
  knots[k + 1] = round(knots[k + 1]! + CYCLE.learn * f * error, 2);
  const other = sky === "sunlit" ? "eclipse" : "sunlit";
  return { [sky]: knots, [other]: cycle?.[other] ?? new Array<number | null>(CYCLE.knots[other]).fill(null) } as unknown as ThermalCycle;
}

/** The knot before `seconds` and the share of the way to the next (held at the last knot). */
function knotOf(n: number, seconds: number): { k: number; f: number } {
  const x = Math.min(Math.max(0, seconds) / CYCLE.knotSeconds, n - 1);
  const k = Math.min(Math.floor(x), n - 2);
  return { k, f: x - k };
}
