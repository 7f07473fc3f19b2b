/**
 * One simulator run against a live Worker: generate the seeded stream, send it in order at the
 * requested rate (one ingest request in flight, so every satellite's history sees its points in
 * order), label each detection through the feedback endpoint (bounded concurrency), keep the phase
 * out of SAFE_MODE when the token allows, and score the real responses against the ground truth.
 */
import { generateScenario, payloadOf } from "./model.mjs";
import { latencyStats, scoreRun } from "./score.mjs";

const REQUEST_TIMEOUT_MS = 15_000;
const ANOMALY_ID = /^an_[0-9a-f]{32}(?:_[A-Za-z0-9._-]{1,64})?$/;
const POINT_ID = /^(an|tp)_[0-9a-f]{32}(?:_[A-Za-z0-9._-]{1,64})?$/;
/** Consecutive failed ingest requests after which the run gives up (server gone). */
const MAX_CONSECUTIVE_FAILURES = 10;

const sleep = (ms) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

/** Status counts and latencies of one kind of request. */
class RequestStats {
  constructor() {
    this.latencies = [];
    this.status = {};
  }
  add(status, ms) {
    this.status[status] = (this.status[status] ?? 0) + 1;
    if (typeof status === "number") this.latencies.push(ms);
  }
  summary() {
    return { requests: Object.values(this.status).reduce((s, n) => s + n, 0), status: this.status, latency_ms: latencyStats(this.latencies) };
  }
}

/** fetch with a timeout; returns { status, body, ms, headers } or { status: "network_error" }. */
async function call(stats, url, init) {
  const started = performance.now();
  try {
    const response = await fetch(url, { ...init, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    const text = await response.text();
    const ms = performance.now() - started;
    stats.add(response.status, ms);
    let body;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = undefined;
    }
    return { status: response.status, body, ms, retryAfter: Number(response.headers.get("retry-after")) || undefined };
  } catch (error) {
    stats.add(error?.name === "TimeoutError" ? "timeout" : "network_error", performance.now() - started);
    return { status: "network_error", error: String(error?.message ?? error) };
  }
}

/**
 * Retries 429 (honouring Retry-After, capped), 5xx and network errors with exponential backoff;
 * returns the last answer. Bounded by `attempts` and by `deadline` (epoch ms).
 */
async function callWithRetry(stats, url, init, { attempts = 6, deadline = Infinity, onRetry } = {}) {
  let last;
  for (let attempt = 0; attempt < attempts; attempt++) {
    last = await call(stats, url, init);
    const retryable = last.status === 429 || last.status === "network_error" || (typeof last.status === "number" && last.status >= 500);
    if (!retryable || attempt === attempts - 1) return last;
    const wait = Math.min(10_000, last.retryAfter ? last.retryAfter * 1000 : 250 * 2 ** attempt);
    if (Date.now() + wait > deadline) return last;
    onRetry?.(last.status);
    await sleep(wait);
  }
  return last;
}

/**
 * Runs the simulation described by `opts` (see cli.mjs) and returns the results object that the
 * CLI prints and writes. `progress(line)` is called a few times a second.
 */
export async function runSimulation(opts, { progress = () => {}, log = () => {} } = {}) {
  const startedAt = new Date();
  const scenario = generateScenario({
    seed: opts.seed,
    satellites: opts.satellites,
    pointsPerSatellite: opts.pointsPerSatellite,
    stepSeconds: opts.step,
    faultRatePerHour: opts.faultRate,
    faultTypes: opts.faults,
    epoch: opts.epoch,
    satellitePrefix: `sim${opts.seed}-${opts.runTag}`,
  });
  const points = scenario.points;
  const ingestStats = new RequestStats();
  const feedbackStats = new RequestStats();
  const phaseStats = new RequestStats();
  const jsonHeaders = { "content-type": "application/json", ...(opts.apiKey && { "x-api-key": opts.apiKey }) };
  const authHeaders = opts.token ? { authorization: `Bearer ${opts.token}` } : {};
  const wallDeadline = startedAt.getTime() + opts.maxWall * 1000;
  const notes = [];

  // The Worker must answer before we start.
  const health = await callWithRetry(new RequestStats(), `${opts.url}/health`, {}, { attempts: 8 });
  if (typeof health.status !== "number") throw new Error(`no answer from ${opts.url}/health: ${health.error}`);

  // Phase: back to NOMINAL_OPS at start and whenever a CRITICAL anomaly escalated to SAFE_MODE.
  const phase = { resets: 0, reset_failures: 0, disabled_reason: opts.phaseReset ? (opts.token ? null : "no token") : "--no-phase-reset", initial: null, safe_mode_seen: 0 };
  const resetPhase = async (why) => {
    if (phase.disabled_reason) return;
    const r = await call(phaseStats, `${opts.url}/api/v1/phase`, {
      method: "POST",
      headers: { ...jsonHeaders, ...authHeaders },
      body: JSON.stringify({ phase: "NOMINAL_OPS", force: true, reason: `simulator: ${why}` }),
    });
    if (r.status === 200) phase.resets++;
    else if (r.status === 409) {
      // Already NOMINAL_OPS (no transition to make).
    } else {
      phase.reset_failures++;
      if (r.status === 401 || r.status === 403) {
        phase.disabled_reason = `POST /api/v1/phase answered ${r.status} (the token is not an admin token)`;
        log(`phase reset disabled: ${phase.disabled_reason}`);
      }
    }
  };
  const current = await call(phaseStats, `${opts.url}/api/v1/phase`, { headers: authHeaders });
  phase.initial = current.body?.phase ?? null;
  if (phase.initial && phase.initial !== "NOMINAL_OPS") await resetPhase(`start of run (was ${phase.initial})`);

  // Feedback: labels sent while ingest goes on, a bounded number in flight.
  const feedback = {
    enabled: opts.feedback && Boolean(opts.token),
    disabled_reason: !opts.feedback ? "--no-feedback" : opts.token ? null : "no token",
    queued: 0,
    sent: 0,
    outcomes: {},
    not_sent: 0,
    server: { detection_accuracy: null, labelled: null, false_positives: null },
  };
  const queue = [];
  let inFlight = 0;
  let idle = Promise.resolve();
  let resolveIdle;
  const pump = () => {
    while (feedback.enabled && inFlight < opts.feedbackConcurrency && queue.length > 0) {
      const job = queue.shift();
      inFlight++;
      if (inFlight === 1) idle = new Promise((r) => (resolveIdle = r));
      sendFeedback(job).finally(() => {
        inFlight--;
        pump();
        if (inFlight === 0) resolveIdle?.();
      });
    }
  };
  const sendFeedback = async (job) => {
    const r = await callWithRetry(
      feedbackStats,
      `${opts.url}/api/v1/anomalies/${job.id}/feedback`,
      { method: "POST", headers: { ...jsonHeaders, ...authHeaders }, body: JSON.stringify({ false_positive: job.falsePositive }) },
      { attempts: 5, deadline: wallDeadline + 60_000 },
    );
    feedback.sent++;
    const outcome = r.status === 200 ? (r.body?.status ?? "ok") : String(r.status);
    feedback.outcomes[outcome] = (feedback.outcomes[outcome] ?? 0) + 1;
    job.point.feedback = { false_positive: job.falsePositive, outcome };
    if (r.status === 200 && typeof r.body?.labelled === "number" && r.body.labelled >= (feedback.server.labelled ?? -1)) {
      feedback.server = { detection_accuracy: r.body.detection_accuracy ?? null, labelled: r.body.labelled, false_positives: r.body.false_positives ?? null };
    }
    if (r.status === 401 || r.status === 403) {
      feedback.enabled = false;
      feedback.disabled_reason = `feedback answered ${r.status}: the token is not an operator or admin token`;
      log(feedback.disabled_reason);
    }
  };

  // Ingest, in order, paced to the rate.
  const records = points.map((p) => ({
    index: p.index,
    satellite_id: p.satellite_id,
    time_ms: p.time_ms,
    fault_id: p.fault_id,
    fault_type: p.fault_type,
    response: null,
    feedback: null,
  }));
  const ingest = { requests_ok: 0, points_sent: 0, points_answered: 0, points_refused: 0, points_unsent: 0, retries: {}, refusals: {}, stopped_reason: null };
  const sendStart = Date.now();
  let consecutiveFailures = 0;
  let detections = 0;
  let falsePositives = 0;
  let lastProgress = 0;
  const showProgress = (force = false) => {
    const now = Date.now();
    if (!force && now - lastProgress < 250) return;
    lastProgress = now;
    const elapsed = (now - sendStart) / 1000;
    const lat = latencyStats(ingestStats.latencies.slice(-200));
    const r429 = (ingestStats.status[429] ?? 0) + (feedbackStats.status[429] ?? 0);
    progress(
      `[sim] ${ingest.points_answered}/${points.length} pts ${((100 * ingest.points_answered) / points.length).toFixed(0)}% ` +
        `| ${(ingest.points_answered / Math.max(elapsed, 0.001)).toFixed(1)} pts/s | detections ${detections} (fp ${falsePositives}) ` +
        `| labels ${feedback.sent}/${feedback.queued} | 429s ${r429} | refused ${ingest.points_refused} | p50 ${lat.p50 ?? "-"} ms | ${elapsed.toFixed(0)}s`,
    );
  };

  for (let start = 0; start < points.length; start += opts.batch) {
    const chunk = points.slice(start, start + opts.batch);
    const due = sendStart + (start / opts.rate) * 1000;
    if (Date.now() >= wallDeadline) {
      ingest.stopped_reason = `--max-wall ${opts.maxWall}s reached`;
      break;
    }
    while (Date.now() < due) {
      await sleep(Math.min(due - Date.now(), 200));
      showProgress();
    }
    const single = opts.batch === 1;
    const body = single ? payloadOf(chunk[0]) : { telemetry: chunk.map(payloadOf) };
    const r = await callWithRetry(
      ingestStats,
      `${opts.url}/api/v1/telemetry${single ? "" : "/batch"}`,
      { method: "POST", headers: jsonHeaders, body: JSON.stringify(body) },
      { attempts: 8, deadline: wallDeadline, onRetry: (status) => (ingest.retries[status] = (ingest.retries[status] ?? 0) + 1) },
    );
    ingest.points_sent += chunk.length;
    const results = r.status === 200 ? (single ? [r.body] : r.body?.results) : undefined;
    const wellFormed = Array.isArray(results) && results.length === chunk.length && results.every((x) => typeof x?.id === "string" && POINT_ID.test(x.id) && typeof x.is_anomaly === "boolean");
    if (!wellFormed) {
      const why = r.status === 200 ? "malformed_response" : String(r.status);
      ingest.refusals[why] = (ingest.refusals[why] ?? 0) + chunk.length;
      ingest.points_refused += chunk.length;
      if (typeof r.status === "number" && r.status >= 400 && r.status < 500 && r.status !== 429 && ingest.refusals[why] === chunk.length) {
        log(`ingest refused with ${r.status}: ${JSON.stringify(r.body)?.slice(0, 300)}`);
      }
      consecutiveFailures++;
      if (consecutiveFailures >= MAX_CONSECUTIVE_FAILURES) {
        ingest.stopped_reason = `${MAX_CONSECUTIVE_FAILURES} consecutive failed ingest requests (last: ${why})`;
        break;
      }
      continue;
    }
    consecutiveFailures = 0;
    ingest.requests_ok++;
    let sawSafeMode = false;
    results.forEach((res, i) => {
      const record = records[chunk[i].index];
      record.response = {
        id: res.id,
        is_anomaly: res.is_anomaly,
        anomaly_type: res.anomaly_type,
        anomaly_score: res.anomaly_score,
        severity_level: res.severity_level,
        mission_phase: res.mission_phase,
        ...(res.is_anomaly && Array.isArray(res.reasoning) && { reason: String(res.reasoning[0] ?? "") }),
      };
      ingest.points_answered++;
      if (res.mission_phase === "SAFE_MODE" || res.should_escalate_to_safe_mode) sawSafeMode = true;
      if (res.is_anomaly) {
        detections++;
        const falsePositive = record.fault_id === null;
        if (falsePositive) falsePositives++;
        if (feedback.enabled && ANOMALY_ID.test(res.id)) {
          feedback.queued++;
          queue.push({ id: res.id, falsePositive, point: record });
        }
      }
    });
    if (sawSafeMode) {
      phase.safe_mode_seen++;
      await resetPhase("SAFE_MODE seen in a response");
    }
    pump();
    showProgress();
  }
  ingest.points_unsent = points.length - ingest.points_sent;
  const sendSeconds = (Date.now() - sendStart) / 1000;

  // Drain the labels, bounded.
  const drainDeadline = Date.now() + 60_000;
  while ((queue.length > 0 || inFlight > 0) && feedback.enabled && Date.now() < drainDeadline) {
    pump();
    await Promise.race([idle, sleep(250)]);
    showProgress();
  }
  feedback.not_sent = queue.length;
  queue.length = 0;
  showProgress(true);

  const scores = scoreRun({ points: records, faults: scenario.faults, faultTypes: opts.faults });
  const finishedAt = new Date();
  const limited = ingestStats.status[429] ?? 0;
  if (limited > 0) {
    notes.push(`ingest was rate limited (${limited} answers 429, retried): lower --rate, or raise --batch (up to --satellites keeps one point per satellite per request)`);
  }
  if (ingest.points_refused > 0) notes.push(`${ingest.points_refused} points were refused and are not scored`);
  if (ingest.points_unsent > 0) notes.push(`${ingest.points_unsent} points were not sent (${ingest.stopped_reason})`);
  return {
    generator: "astraguard-edge simulator (scripts/simulate.mjs)",
    run: {
      started_at: startedAt.toISOString(),
      finished_at: finishedAt.toISOString(),
      wall_seconds: (finishedAt - startedAt) / 1000,
      send_seconds: sendSeconds,
      achieved_rate_points_per_s: ingest.points_answered / Math.max(sendSeconds, 0.001),
      url: opts.url,
      seed: opts.seed,
      run_tag: opts.runTag,
      token: opts.tokenSource,
      api_key: Boolean(opts.apiKey),
      options: {
        satellites: opts.satellites,
        rate: opts.rate,
        duration: opts.duration,
        points: points.length,
        batch: opts.batch,
        step_seconds: opts.step,
        fault_rate_per_hour: opts.faultRate,
        faults: opts.faults,
        epoch: opts.epoch,
        feedback_concurrency: opts.feedbackConcurrency,
      },
      notes,
    },
    scenario: {
      satellites: scenario.satellites,
      points: points.length,
      step_seconds: scenario.step_seconds,
      simulated_seconds_per_satellite: scenario.simulated_seconds,
      fault_points: points.filter((p) => p.fault_id).length,
      faults: scenario.faults,
    },
    ingest,
    feedback: { ...feedback, enabled: undefined, labels_false_positive: records.filter((r) => r.feedback?.false_positive === true).length, labels_true_positive: records.filter((r) => r.feedback?.false_positive === false).length },
    phase,
    requests: { ingest: ingestStats.summary(), feedback: feedbackStats.summary(), phase: phaseStats.summary() },
    scores,
    points: opts.omitPoints ? undefined : records,
  };
}
