/**
 * The counters the aggregation objects answer from `stats()`, as plain types with no runtime
 * import: the objects return them, and the stack tests (Node, without the Workers types) read
 * them over RPC with the same declarations.
 */

/** Counters of one aggregator, for tests and the exactness report. */
export interface AggregatorStats {
  streams: number;
  /** Distinct isolates among the remembered batch ids (ids are `${isolateId}-${sequence}`). */
  senders: number;
  batchesAccepted: number;
  batchesDuplicate: number;
  /** Forwards from leaf aggregators merged, and re-sent ones ignored. */
  forwardsAccepted: number;
  forwardsDuplicate: number;
  pointsDropped: number;
  pushes: number;
  pushFailures: number;
  lastPushMs: number;
  version: number;
  pushedVersion: number;
}

/** Counters of one leaf, for tests, the bench and the exactness report. */
export interface LeafStats {
  batchesAccepted: number;
  batchesDuplicate: number;
  batchesRefused: number;
  pointsDropped: number;
  pendingStreams: number;
  outbox: number;
  senders: number;
  forwards: number;
  forwardFailures: number;
}
