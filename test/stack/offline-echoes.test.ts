/**
 * The offline harness's echo classes (`--echoes`) count exactly the false positives the scoring
 * counts as echoes: within ECHO_POINTS points of the same satellite after a fault window.
 */
import { describe, expect, it } from 'vitest';
import { echoClasses } from '../../scripts/sim/offline.mjs';
import { ECHO_POINTS, scoreRun } from '../../scripts/sim/score.mjs';

type Rec = Parameters<typeof echoClasses>[0][number];
const rec = (sat: string, t: number, fault: string | null, anomaly: string | null): Rec => ({
  satellite_id: sat,
  time_ms: t * 20_000,
  fault_id: fault ? `${sat}/f` : null,
  fault_type: fault,
  response: { id: '', is_anomaly: anomaly !== null, anomaly_type: anomaly ?? 'NONE', reason: anomaly ?? '' },
});

describe('offline harness: false positives after faults, by class', () => {
  it('classes each echo by the fault before it and the type flagged, per satellite, as the scoring counts them', () => {
    const records: Rec[] = [
      rec('a', 0, 'stuck_sensor', 'SENSOR_STUCK'),
      rec('a', 1, null, 'SENSOR_STUCK'), // 1 point after a's fault: an echo
      rec('b', 1, 'gradual_drift', 'DRIFT'),
      rec('b', 2, null, null),
      rec('b', 3, null, 'RATE_OF_CHANGE'), // 2 points after b's fault: an echo
      ...Array.from({ length: ECHO_POINTS }, (_, k) => rec('a', 2 + k, null, null)),
      rec('a', 2 + ECHO_POINTS, null, 'THERMAL_LOW'), // beyond the echo window: not an echo
    ];
    const { counts, list } = echoClasses(records);
    expect(counts).toEqual({ 'stuck_sensor -> SENSOR_STUCK': 1, 'gradual_drift -> RATE_OF_CHANGE': 1 });
    expect(list.map((e) => e.since)).toEqual([1, 2]);
    const points = records.map((r, index) => ({ ...r, index })) as unknown as Parameters<typeof scoreRun>[0]['points'];
    const scores = scoreRun({ points, faults: [] });
    expect(scores.false_positives.within_echo_of_window).toBe(list.length);
    expect(scores.false_positives.total).toBe(3);
  });
});
