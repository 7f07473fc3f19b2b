/**
 * Signal model and fault injection of the telemetry simulator: a LEO smallsat with a 28 V bus,
 * simulated in compressed time (each point advances the satellite's clock by `stepSeconds`).
 *
 * Nominal physics per satellite (parameters drawn from the seed):
 * - orbit of 94..96 min with an eclipse of 33..37 % of it;
 * - temperature: first-order thermal model towards a sunlit / eclipse equilibrium (time constant
 *   15..25 min), warmer with the payload or the heater on;
 * - bus voltage: clamped near end-of-charge (28.9..29.2 V) in sunlight, battery discharge in eclipse
 *   (a ~0.6 V step at entry, then ~2 V down to ~26.3 V at exit), minus an IR drop with the load;
 * - current: base load 1.0..1.4 A, payload sessions (+1.2..1.8 A, sunlit only), heater in eclipse;
 * - wheel speed: slow momentum build-up (0.1..0.4 rpm/s), an orbital cycle, momentum dumps
 *   (3 rpm/s back to ~2500 rpm when outside 800..4500 rpm), and the momentum of slews;
 * - gyro: orbit rate (~0.063 deg/s, nadir pointing) + a small control limit cycle + rare slews of
 *   0.3..1.0 deg/s lasting 4..10 min;
 * - Gaussian sensor noise, then quantisation to the sensor's resolution.
 *
 * Faults (ground truth: satellite, type, first and last affected point):
 * - stuck_sensor: one field repeats its last good reading exactly (200..800 s);
 * - voltage_collapse: the bus falls 3..10 V below nominal in 1..3 points, holds, recovers (160..600 s);
 * - thermal_runaway: +0.03..0.12 °C/s for 5..15 min, then cools back (time constant 10 min); the
 *   window ends when the excess is below 2 °C;
 * - gyro_spike: 1..3 points of a 1..60 deg/s glitch (log-uniform);
 * - gradual_drift: a sensor bias growing linearly for 10..40 min (voltage ±2..8 V, temperature
 *   ±15..60 °C, current +1..5 A, wheel speed +800..4000 rpm), then cleared.
 * Faults on one satellite never overlap, and each starts at least 12 points after the previous
 * one ended (so the Worker's 8-point history is clean at its start).
 *
 * Everything is a pure function of (seed, options): `generateScenario` twice gives the same stream.
 */
import { Rng } from "./prng.mjs";

export const FAULT_TYPES = Object.freeze(["stuck_sensor", "voltage_collapse", "thermal_runaway", "gyro_spike", "gradual_drift"]);
export const FIELDS = Object.freeze(["voltage", "temperature", "gyro", "current", "wheel_speed"]);

/** Sensor noise (sd), resolution (q) and the API's accepted range of each field. */
export const SENSORS = Object.freeze({
  voltage: { sd: 0.03, q: 0.01, min: 0, max: 50 },
  temperature: { sd: 0.25, q: 0.1, min: -100, max: 150 },
  gyro: { sd: 0.003, q: 0.001, min: -1000, max: 1000 },
  current: { sd: 0.025, q: 0.01, min: 0, max: 1000 },
  wheel_speed: { sd: 3, q: 1, min: 0, max: 100000 },
});

export const DEFAULT_SCENARIO = Object.freeze({
  seed: 1,
  satellites: 3,
  pointsPerSatellite: 200,
  stepSeconds: 20,
  /** Expected faults per satellite per simulated hour. */
  faultRatePerHour: 1.5,
  faultTypes: FAULT_TYPES,
  epoch: "2026-01-01T00:00:00Z",
  /** satellite_id = `${satellitePrefix}-${n}`; default `sim<seed>`. */
  satellitePrefix: undefined,
});

/** Points before the first fault, and between the end of one fault and the start of the next. */
export const FAULT_GAP_POINTS = 12;

const decimals = (q) => Math.max(0, -Math.floor(Math.log10(q) + 1e-9));
const quantise = (value, q) => Number((Math.round(value / q) * q).toFixed(decimals(q)));
const clamp = (x, low, high) => Math.min(high, Math.max(low, x));

/**
 * The stream of one run: points in send order (by simulated time, satellites interleaved) and the
 * fault windows. `points[i].values` is the body's measurements; `fault_id`/`fault_type` the label.
 */
export function generateScenario(options = {}) {
  const opts = { ...DEFAULT_SCENARIO, ...options };
  const seed = Number(opts.seed) >>> 0;
  const n = Math.max(1, Math.floor(opts.pointsPerSatellite));
  const count = Math.max(1, Math.floor(opts.satellites));
  const dt = opts.stepSeconds;
  if (!(dt > 0)) throw new Error("stepSeconds must be > 0");
  const epochMs = Date.parse(opts.epoch);
  if (Number.isNaN(epochMs)) throw new Error(`epoch ${opts.epoch} is not a date`);
  const types = [...opts.faultTypes];
  for (const t of types) if (!FAULT_TYPES.includes(t)) throw new Error(`unknown fault type ${t}`);
  const prefix = opts.satellitePrefix ?? `sim${seed}`;
  const root = new Rng(seed);

  const satellites = [];
  const faults = [];
  const series = [];
  for (let k = 0; k < count; k++) {
    const id = `${prefix}-${k + 1}`;
    const params = satelliteParams(root.fork(`sat${k}/params`));
    const offsetMs = Math.round((k * dt * 1000) / count);
    const schedule = scheduleFaults(root.fork(`sat${k}/faults`), { n, dt, types, rate: opts.faultRatePerHour });
    const perPoint = new Array(n).fill(undefined);
    schedule.forEach((f, m) => {
      f.id = `${id}/f${m + 1}`;
      for (let i = f.startIndex; i <= f.endIndex; i++) perPoint[i] = f;
    });
    const values = simulateSatellite(root.fork(`sat${k}/signal`), root.fork(`sat${k}/noise`), params, { n, dt, epochMs: epochMs + offsetMs, perPoint });
    satellites.push({ id, params: roundParams(params) });
    for (const f of schedule) {
      faults.push({
        id: f.id,
        satellite_id: id,
        type: f.type,
        field: f.field,
        start_index: f.startIndex,
        end_index: f.endIndex,
        points: f.endIndex - f.startIndex + 1,
        start_ms: epochMs + offsetMs + f.startIndex * dt * 1000,
        end_ms: epochMs + offsetMs + f.endIndex * dt * 1000,
        start: new Date(epochMs + offsetMs + f.startIndex * dt * 1000).toISOString(),
        end: new Date(epochMs + offsetMs + f.endIndex * dt * 1000).toISOString(),
        params: roundParams(f.params),
      });
    }
    series.push({ id, offsetMs, values, perPoint });
  }

  const points = [];
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < count; k++) {
      const s = series[k];
      const timeMs = epochMs + s.offsetMs + i * dt * 1000;
      const fault = s.perPoint[i];
      points.push({
        index: points.length,
        satellite_id: s.id,
        step: i,
        time_ms: timeMs,
        timestamp: new Date(timeMs).toISOString(),
        values: s.values[i],
        fault_id: fault?.id ?? null,
        fault_type: fault?.type ?? null,
      });
    }
  }
  faults.sort((a, b) => a.start_ms - b.start_ms || a.satellite_id.localeCompare(b.satellite_id));
  return {
    seed,
    options: { ...opts, seed, faultTypes: types, satellitePrefix: prefix },
    step_seconds: dt,
    simulated_seconds: n * dt,
    satellites,
    faults,
    points,
  };
}

/** The API body of a generated point. */
export function payloadOf(point) {
  return { ...point.values, timestamp: point.timestamp, satellite_id: point.satellite_id };
}

function roundParams(params) {
  return Object.fromEntries(Object.entries(params).map(([k, v]) => [k, typeof v === "number" ? Number(v.toPrecision(6)) : v]));
}

function satelliteParams(rng) {
  return {
    periodS: rng.uniform(94, 96) * 60,
    eclipseFraction: rng.uniform(0.33, 0.37),
    orbitPhase0: rng.uniform(0, 1),
    tempSun: rng.uniform(28, 38),
    tempEclipse: rng.uniform(-8, 2),
    tauThermalS: rng.uniform(15, 25) * 60,
    endOfChargeV: rng.uniform(28.9, 29.2),
    tauChargeS: rng.uniform(6, 10) * 60,
    baseCurrentA: rng.uniform(1.0, 1.4),
    payloadCurrentA: rng.uniform(1.2, 1.8),
    heaterCurrentA: 0.4,
    wheelDriftRpmS: rng.uniform(0.1, 0.4) * rng.sign(),
    wheelCycleRpm: rng.uniform(80, 200),
    wheelStartRpm: rng.uniform(1500, 3500),
    gyroSign: rng.sign(),
  };
}

/** Non-overlapping fault windows in point indices, each with its parameters. */
function scheduleFaults(rng, { n, dt, types, rate }) {
  const out = [];
  if (types.length === 0 || !(rate > 0)) return out;
  const steps = (seconds, min = 1) => Math.max(min, Math.round(seconds / dt));
  let next = FAULT_GAP_POINTS;
  for (let guard = 0; guard < n; guard++) {
    const start = next + Math.round(rng.exponential(3600 / rate) / dt);
    const type = rng.pick(types);
    const f = faultParams(rng, type, dt, steps);
    const endIndex = start + f.length - 1;
    if (endIndex >= n) break;
    out.push({ type, field: f.field, startIndex: start, endIndex, params: f.params, profile: f.profile });
    next = endIndex + 1 + FAULT_GAP_POINTS;
  }
  return out;
}

function faultParams(rng, type, dt, steps) {
  switch (type) {
    case "stuck_sensor": {
      const field = rng.pick(FIELDS);
      const length = steps(rng.uniform(200, 800), 5);
      return { field, length, params: { field }, profile: { kind: "stuck" } };
    }
    case "voltage_collapse": {
      const depth = rng.uniform(3, 10);
      const fall = rng.int(1, 3);
      const recover = rng.int(2, 4);
      const length = Math.max(fall + recover + 2, steps(rng.uniform(160, 600)));
      return { field: "voltage", length, params: { depth_v: depth, fall_points: fall, recover_points: recover }, profile: { kind: "collapse", depth, fall, recover, length } };
    }
    case "thermal_runaway": {
      const rate = rng.uniform(0.03, 0.12);
      const heat = steps(rng.uniform(300, 900), 3);
      const peak = rate * dt * heat;
      const tau = 600;
      const cool = Math.max(1, Math.ceil((tau * Math.log(Math.max(peak, 2.01) / 2)) / dt));
      return { field: "temperature", length: heat + cool, params: { rate_c_per_s: rate, heat_points: heat, peak_excess_c: peak, cool_tau_s: tau }, profile: { kind: "thermal", rate, heat, peak, tau } };
    }
    case "gyro_spike": {
      const length = rng.int(1, 3);
      const sign = rng.sign();
      const magnitude = rng.logUniform(1, 60);
      const shape = Array.from({ length }, () => sign * magnitude * rng.uniform(0.6, 1));
      return { field: "gyro", length, params: { magnitude_deg_s: magnitude * sign, points: length }, profile: { kind: "spike", shape } };
    }
    case "gradual_drift": {
      const field = rng.pick(["voltage", "temperature", "current", "wheel_speed"]);
      const total =
        field === "voltage" ? rng.sign() * rng.uniform(2, 8)
        : field === "temperature" ? rng.sign() * rng.uniform(15, 60)
        : field === "current" ? rng.uniform(1, 5)
        : rng.uniform(800, 4000);
      const length = steps(rng.uniform(600, 2400), 5);
      return { field, length, params: { field, total_bias: total }, profile: { kind: "drift", total, length } };
    }
    default:
      throw new Error(`unknown fault type ${type}`);
  }
}

/** Advances the physical state by dt seconds at simulated time t (ms); returns true values. */
function physics(state, p, rng, t, dt) {
  const u = ((((t - state.t0) / 1000 / p.periodS + p.orbitPhase0) % 1) + 1) % 1;
  const eclipse = u < p.eclipseFraction;
  const inEclipseS = eclipse ? u * p.periodS : 0;
  // Payload sessions: sunlit only, ~every 30 min of sunlight, 5..15 min long.
  if (eclipse) state.payloadLeft = 0;
  else if (state.payloadLeft > 0) state.payloadLeft -= dt;
  else if (rng.chance(dt / 1800)) state.payloadLeft = rng.uniform(300, 900);
  const payload = state.payloadLeft > 0;
  const heater = eclipse && state.temp < 8;
  const current = p.baseCurrentA + (payload ? p.payloadCurrentA : 0) + (heater ? p.heaterCurrentA : 0);
  const teq = (eclipse ? p.tempEclipse : p.tempSun) + (payload ? 4 : 0) + (heater ? 3 : 0);
  state.temp += (teq - state.temp) * (1 - Math.exp(-dt / p.tauThermalS));
  const load = current - p.baseCurrentA;
  const vTarget = eclipse
    ? p.endOfChargeV - 0.6 - 2.0 * (inEclipseS / (p.eclipseFraction * p.periodS)) - 0.2 * load
    : p.endOfChargeV - 0.1 * load;
  state.volt += (vTarget - state.volt) * (1 - Math.exp(-dt / (eclipse ? 60 : p.tauChargeS)));
  // Slews: ~every 2.5 h, 4..10 min, trapezoid of 0.3..1.0 deg/s.
  if (state.slew) {
    state.slew.j += 1;
    if (state.slew.j >= state.slew.total) state.slew = undefined;
  } else if (rng.chance(dt / 9000)) {
    state.slew = { j: 0, total: Math.max(3, Math.round(rng.uniform(240, 600) / dt)), peak: rng.uniform(0.3, 1.0) * rng.sign() };
  }
  const s = state.slew;
  const ramp = 2;
  const slewRate = s ? s.peak * Math.min(1, (s.j + 1) / ramp, (s.total - s.j) / ramp) : 0;
  // Reaction wheel: momentum build-up, dumps, and the momentum exchanged in slews.
  state.wheel += p.wheelDriftRpmS * dt;
  if (state.wheel > 4500 || state.wheel < 800) state.dumping = true;
  if (state.dumping) {
    state.wheel -= Math.sign(state.wheel - 2500) * Math.min(3 * dt, Math.abs(state.wheel - 2500));
    if (Math.abs(state.wheel - 2500) < 100) state.dumping = false;
  }
  const wheel = state.wheel + p.wheelCycleRpm * Math.sin(2 * Math.PI * u) + 350 * slewRate;
  const orbitRate = 360 / p.periodS;
  const gyro = p.gyroSign * orbitRate + slewRate + 0.008 * Math.sin((2 * Math.PI * (t / 1000)) / 317);
  return { voltage: state.volt, temperature: state.temp, gyro, current, wheel_speed: wheel };
}

function simulateSatellite(rng, noise, p, { n, dt, epochMs, perPoint }) {
  const state = { t0: epochMs, temp: (p.tempSun + p.tempEclipse) / 2, volt: 28, wheel: p.wheelStartRpm, dumping: false, payloadLeft: 0, slew: undefined };
  // Two orbits of pre-roll so the thermal and battery states start settled.
  const preroll = Math.ceil((2 * p.periodS) / dt);
  for (let i = preroll; i > 0; i--) physics(state, p, rng, epochMs - i * dt * 1000, dt);
  const out = [];
  let previous;
  for (let i = 0; i < n; i++) {
    const t = epochMs + i * dt * 1000;
    const truth = physics(state, p, rng, t, dt);
    const fault = perPoint[i];
    const j = fault ? i - fault.startIndex : -1;
    const measured = {};
    for (const field of FIELDS) {
      const sensor = SENSORS[field];
      let v = truth[field] + noise.normal(0, sensor.sd);
      if (fault) v += faultOffset(fault, field, j, dt);
      measured[field] = clamp(quantise(v, sensor.q), sensor.min, sensor.max);
    }
    if (fault?.type === "stuck_sensor" && previous) {
      // Stuck: the sensor keeps reporting its last good reading (the point before the window).
      fault.frozen ??= previous[fault.field];
      measured[fault.field] = fault.frozen;
    }
    out.push(measured);
    if (!fault) previous = measured;
  }
  for (const f of new Set(perPoint)) if (f) delete f.frozen;
  return out;
}

/** What a fault adds to the measured value of `field` at its j-th point. */
function faultOffset(fault, field, j, dt) {
  const p = fault.profile;
  switch (p.kind) {
    case "collapse": {
      if (field !== "voltage") return 0;
      const f = j < p.fall ? (j + 1) / p.fall : j >= p.length - p.recover ? (p.length - j) / (p.recover + 1) : 1;
      return -p.depth * f;
    }
    case "thermal": {
      if (field !== "temperature") return 0;
      return j < p.heat ? p.rate * dt * (j + 1) : p.peak * Math.exp((-(j - p.heat + 1) * dt) / p.tau);
    }
    case "spike":
      return field === "gyro" ? p.shape[j] : 0;
    case "drift":
      return field === fault.field ? (p.total * (j + 1)) / p.length : 0;
    default:
      return 0;
  }
}
