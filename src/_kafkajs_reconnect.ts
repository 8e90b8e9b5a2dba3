/**
 * Brokers that left a request unanswered lately, by address, and a fix for kafkajs 2.2.4 connecting to one of
 * them again as if nothing had happened. Used by the agent's and the sink's kafkajs fixes
 * (./check/_kafkajs_silent_broker.ts, ./sink/_kafkajs_lost_broker.ts).
 *
 * Those fixes drop a broker whose request timed out, so the client reads fresh metadata from another. Until
 * the cluster fences the silent node (Kafka's `broker.session.timeout.ms`, 9 s by default, and longer while
 * the controller itself moves), that metadata still names it a leader, and kafkajs makes a new broker object
 * for it. The kernel of a frozen process accepts the connection, and kafkajs skips the handshake with brokers
 * it learned from metadata, so the first request waited out a whole request timeout again. Seen in the cluster
 * failover test's SIGSTOP step: an agent that published nothing for 18-21 s, and a sink that stored nothing
 * on four partitions until its stall detector replaced the consumer, 21 s in.
 *
 * The fix: a connection to an address that left a request unanswered in the last minute first asks for the
 * broker's API versions ({@linkcode probe}), and waits {@linkcode PROBE_MS} for them. A broker that answers
 * is used as before (a leader that was only slow, waiting for a frozen follower to leave its in-sync
 * replicas, or a broker back from a pause), and its mark is cleared. One that does not fails the connection
 * with a connection error, which kafkajs answers by refreshing its metadata before it tries again, so each
 * try costs the probe, not a request timeout. The probe sits in the connection's own `connect`, not the
 * broker's: kafkajs also opens a closed connection again by itself, inside the next request on it (its
 * connection pool's `getConnection`), so a request that found the broker connected just before a failed
 * probe closed it went to the frozen process unprobed and waited out a whole request timeout: the likely
 * path of a failure of tests/kafkajs_reconnect_test.ts seen once in CI, which that test now reproduces
 * directly. And a broker whose own handshake (ApiVersions on a client's first connection, or SASL) goes
 * unanswered fails as a connection error too, not as a request timeout, which kafkajs would retry against
 * the same broker as if it were merely slow.
 *
 * Applied in every isolate that talks to Kafka through these fixes (kafkajs's modules are per isolate).
 *
 * @module
 */
// @ts-types="./_kafkajs_broker.d.ts"
import Broker from "kafkajs/src/broker/index.js";
// @ts-types="./_kafkajs_connection.d.ts"
import Connection from "kafkajs/src/network/connection.js";
// @ts-types="./_kafkajs_api_versions.d.ts"
import * as ApiVersions from "kafkajs/src/protocol/requests/apiVersions/index.js";
// @ts-types="./_kafkajs_errors.d.ts"
import { KafkaJSConnectionError } from "kafkajs/src/errors.js";
import { deadline, isTimeout } from "./async.ts";

/** How long a connection to a broker that was silent lately waits for its API versions. */
export const PROBE_MS = 3_000;

/** A broker's address, as kafkajs's connection pool keeps it. */
export interface BrokerAddress {
  readonly host: string;
  readonly port: number;
}

/**
 * When each address last left a request unanswered; an answer clears it. A mark older than
 * {@linkcode SILENT_FOR_MS} is ignored: a node that restarted since answers at the same address.
 */
const silentSince = new Map<string, number>();
const SILENT_FOR_MS = 60_000;

const key = ({ host, port }: BrokerAddress) => `${host}:${port}`;

/** Records that a request to `address` timed out. */
export function markSilent(address: BrokerAddress): void {
  silentSince.set(key(address), Date.now());
}

/** Records that `address` answered. */
export function markAnswered(address: BrokerAddress): void {
  silentSince.delete(key(address));
}

/** Whether a request to `address` timed out in the last minute, with no answer since. */
export function isSilent(address: BrokerAddress): boolean {
  const since = silentSince.get(key(address));
  return since !== undefined && Date.now() - since < SILENT_FOR_MS;
}

/** Whether any address left a request unanswered in the last minute, with no answer since. */
export function anySilent(): boolean {
  const now = Date.now();
  for (const since of silentSince.values()) if (now - since < SILENT_FOR_MS) return true;
  return false;
}

/** Whether `error` is kafkajs's request timeout. */
export function isRequestTimeout(error: unknown): boolean {
  return error instanceof Error && error.name === "KafkaJSRequestTimeoutError";
}

/** A kafkajs connection, as far as a probe needs it. */
export interface ProbedConnection {
  /** The SASL settings, when the listener wants authentication. */
  readonly sasl?: unknown;
  /** The API versions kafkajs negotiated with the broker, once it has. */
  readonly versions: unknown;
  isConnected(): boolean;
  isAuthenticated(): boolean;
  /** Authenticates with SASL, once kafkajs knows the broker's API versions. */
  authenticate(): Promise<void>;
  connect(): Promise<unknown>;
  disconnect(): Promise<unknown>;
  send(request: { request: unknown; response: unknown }): Promise<unknown>;
  /** Fails every request in flight on the connection with `error`. */
  rejectRequests(error: Error): void;
}

/**
 * Asks the broker at `address` for its API versions on `connection` (version 0: every broker answers it),
 * after authenticating it if its listener wants SASL, and marks the address by what comes of it. Resolves to
 * null when it answers within `withinMs` (default {@linkcode PROBE_MS}), else to the connection error that
 * says it did not; a refused authentication is thrown as it is, not taken for silence. An unanswered
 * probe is failed at once, and every other request in flight on `connection` with it, as a connection error
 * (what kafkajs and the sink's fixes handle as a broker out of reach), and the connection is closed, in the
 * same turn, so no request is queued behind them: kafkajs closes a connection only once its requests have
 * settled (and a request's timeout cannot be made shorter than the client's).
 */
export async function probe(
  connection: ProbedConnection,
  address: BrokerAddress,
  withinMs = PROBE_MS,
): Promise<KafkaJSConnectionError | null> {
  // A SASL listener takes one ApiVersions before authentication and closes the connection at a second
  // (kafkajs sends its own on a client's first connection): authenticated first, within the same deadline.
  const ask = () => connection.send(ApiVersions.protocol({ version: 0 })());
  const request = connection.sasl && !connection.isAuthenticated()
    ? connection.authenticate().then(ask)
    : ask();
  try {
    await deadline(request, withinMs);
    markAnswered(address);
    return null;
  } catch (error) {
    if ((error as Error).name === "KafkaJSSASLAuthenticationError") {
      connection.disconnect().catch(() => {});
      throw error;
    }
    const why = unanswered(
      address,
      isTimeout(error) ? `no answer to ApiVersions within ${withinMs} ms` : (error as Error).message,
    );
    markSilent(address);
    request.catch(() => {});
    connection.rejectRequests(why);
    connection.disconnect().catch(() => {});
    return why;
  }
}

/**
 * Whether `connection` can be probed as it opens: not a SASL connection before kafkajs has learned the
 * broker's API versions, since kafkajs then sends its own ApiVersions before authenticating, and a SASL
 * listener closes the connection at a second one; it is probed once authenticated instead (`Broker.connect`
 * below).
 */
function canProbeNow(connection: ProbedConnection): boolean {
  return !connection.sasl || connection.versions !== null;
}

/** Connections being opened by a caller that probes them itself, with a deadline of its own. */
const probedByCaller = new WeakSet<ProbedConnection>();

/**
 * Connects `connection`, unless it is connected, without the probe a connection to a silent address makes:
 * for a caller that probes it right after, with a deadline of its own.
 */
export async function connectUnprobed(connection: ProbedConnection): Promise<void> {
  if (connection.isConnected()) return;
  probedByCaller.add(connection);
  try {
    await connection.connect();
  } finally {
    probedByCaller.delete(connection);
  }
}

let applied = false;

/** Applies the fix once per isolate. */
export function fixKafkajsReconnect(): void {
  if (applied) return;
  applied = true;
  const connectConnection = Connection.prototype.connect;
  Connection.prototype.connect = async function (this: Connection) {
    if (this.isConnected() || probedByCaller.has(this) || !isSilent(this) || !canProbeNow(this)) {
      return await connectConnection.call(this);
    }
    await connectConnection.call(this);
    const failure = await probe(this, this);
    if (failure !== null) throw failure;
    return true;
  };
  const connectBroker = Broker.prototype.connect;
  Broker.prototype.connect = async function (this: Broker) {
    const probeAfter = !this.isConnected() && isSilent(this.connectionPool);
    try {
      await connectBroker.call(this);
    } catch (error) {
      if (!isRequestTimeout(error)) throw error;
      markSilent(this.connectionPool);
      // kafkajs closes the connection itself (BrokerPool.connectBroker) after a connection error.
      throw unanswered(this.connectionPool, (error as Error).message);
    }
    // A SASL connection that could not be probed as it opened (above) is probed now that it is authenticated.
    if (!probeAfter || !isSilent(this.connectionPool)) return;
    const connection = await this.connectionPool.getConnection();
    if (!connection.sasl) return;
    const failure = await probe(connection, this.connectionPool);
    if (failure !== null) throw failure;
  };
}

/** A kafkajs broker, as far as {@linkcode abandon} needs it. */
export interface AbandonedBroker {
  readonly connectionPool: BrokerAddress & {
    map<T>(callback: (connection: ProbedConnection) => T): T[];
  };
  disconnect(): Promise<unknown>;
}

/**
 * Closes a broker that was dropped from its pool for silence, failing every request still in flight on it at
 * once, as the connection error `why` (which kafkajs answers by reading the metadata anew), not after another
 * request timeout: kafkajs closes a connection only once its requests have settled, and a retry may have sent
 * it one while the drop was decided (seen in a full-suite run of the cluster failover test).
 */
export function abandon(broker: AbandonedBroker, why: string): void {
  const gone = unanswered(broker.connectionPool, why);
  broker.connectionPool.map((connection) => connection.rejectRequests(gone));
  broker.disconnect().catch(() => {});
}

/**
 * The connection error of a broker at `address` that was connected to but did not answer: what kafkajs, and
 * the sink's fixes, handle as a broker out of reach.
 */
export function unanswered({ host, port }: BrokerAddress, why: string): KafkaJSConnectionError {
  return new KafkaJSConnectionError(
    `Connected to ${host}:${port}, but the broker did not answer (${why})`,
    { broker: `${host}:${port}`, code: "ETIMEDOUT" },
  );
}
