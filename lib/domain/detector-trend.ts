/**
 * The slow-change check: per field, a tracker of the value the spacecraft's physics allows. It
 * follows the readings (smoothed) but never faster than the field's physical rate limits
 * (detector-bands.ts TRACKERS), so a drift, a runaway or a collapse faster than those limits
 * leaves it behind and the gap is flagged. While its field is flagged the tracker stands still
 * (a fault never becomes the baseline); when the readings come back within the threshold the
 * field is nominal again at once, so a recovered fault stops being flagged.
 */
import type { Sky, TrackerSpec } from "./detector-bands";
import type { FieldState } from "./detector-state";
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
): TrackResult {
  const tracked = memory.track;
  const stepped = spec.step !== undefined && previous !== undefined && Math.abs(value - previous) >= spec.step;
  // A gap or a released sensor forgets the learned rate too; a load step or a new level keeps it.
  if (tracked === undefined || restart) return { finding: undefined, memory: { ...restarted(memory, value), slope: undefined, learned: undefined }, restarted: "other" };
  if (stepped) return { finding: undefined, memory: restarted(memory, value), restarted: "step" };
  const slope = memory.slope ?? 0;
  // While frozen, the physics could have moved the true value by up to its rate limits (times
  // `widen`) since the tracker was last trusted: a reading back inside that envelope is nominal
  // again (recovery), so a nominal change during a fault never traps the tracker.
  const frozenSeconds = memory.frozenSince === undefined ? 0 : (time - memory.frozenSince) / 1000;
  const expected = tracked + slope * (frozenSeconds > 0 ? frozenSeconds : seconds);
  const high = expected + spec.riseMax(tracked, sky) * frozenSeconds * spec.widen;
  const low = expected - spec.fallMax(tracked, sky) * frozenSeconds * spec.widen;
  const outside = value > high ? value - high : value < low ? value - low : 0;
  const type = outside > 0 ? spec.above : spec.below;
  const side = outside > 0 ? 1 : -1;
  // A fault pushes one way: a reading past the other side of the envelope means it is over.
  const crossed = memory.side !== undefined && memory.side !== side;
  if (Math.abs(outside) > spec.threshold && type !== undefined && !crossed) {
    const frozenSince = memory.frozenSince ?? time;
    // A level held longer than any fault lasts is a new operating point: start again from it.
    if ((time - frozenSince) / 1000 > spec.maxFreezeSeconds) return { finding: undefined, memory: restarted(memory, value), restarted: "other" };
    const above = outside > 0;
    return {
      finding: {
        field,
        check: "drift",
        score: clamp01(0.5 + (0.5 * (Math.abs(outside) - spec.threshold)) / spec.span),
        type,
        reason: `${field} ${value} is ${round(Math.abs(outside), 3)} ${above ? "above" : "below"} the ${round(above ? high : low, 3)} the physics allows (${spec.physics}; threshold ${spec.threshold})`,
      },
      memory: { ...memory, frozenSince, side },
    };
  }
  if (frozenSeconds > 0 || Math.abs(outside) > spec.threshold) return { finding: undefined, memory: restarted(memory, value), restarted: "other" };
  const alpha = 1 - Math.exp(-seconds / spec.smoothSeconds);
  const move = Math.min(spec.riseMax(tracked, sky) * seconds, Math.max(-spec.fallMax(tracked, sky) * seconds, alpha * (value - expected)));
  const next: FieldState = { ...memory, track: expected + move, frozenSince: undefined, side: undefined };
  const learn = spec.slope;
  if (learn && seconds > 0 && Math.abs(slope + move / seconds) <= learn.ignoreAbove) {
    // A running mean over the first readings, then an EWMA: a new satellite learns its rate fast.
    const learned = Math.min(LEARN_CAP, (memory.learned ?? 0) + 1);
    const weight = Math.max(1 - Math.exp(-seconds / learn.seconds), 1 / learned);
    next.slope = slope + weight * (move / seconds);
    next.learned = learned;
  }
  return { finding: undefined, memory: next };
}

/** Readings counted towards a learned rate (beyond this, it is an EWMA). */
const LEARN_CAP = 1000;

/** The tracker started again from `value` (a learned rate is kept). */
function restarted(memory: FieldState, value: number): FieldState {
  return { ...memory, track: value, frozenSince: undefined, side: undefined };
}
