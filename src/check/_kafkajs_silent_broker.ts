/**
 * A fix for a kafkajs 2.2.4 producer that stops publishing while one broker is hung (a frozen process, or a
 * network path that drops packets instead of refusing them), until that broker wakes or the metadata expires
 * (5 minutes). Seen in the cluster failover test: the agent published nothing while a node was stopped with
 * SIGSTOP, although the cluster had moved that node's partitions to the others.
 *
 * The cause, in `src/producer/sendMessages.js` and `src/cluster/brokerPool.js`: a send waits for every
 * broker's produce request (one `Promise.all`), and a request that times out is retried as it is, to the
 * same broker, since kafkajs refreshes the metadata only after a closed or refused connection; its metadata
 * requests go to any connected broker, the silent one included. And a connection to a frozen process is
 * accepted by its kernel, so connecting again fails only when the first request's answer times out, which
 * kafkajs retries as if the broker were merely slow (its default: 6 tries of 5 s).
 *
 * The fix: a broker whose produce or metadata request timed out, and which does not answer a probe either
 * (a healthy leader times out too while it waits for a frozen follower to leave the in-sync replicas), is
 * dropped from its client's pool (as kafkajs does for a closed connection) and its connection closed, so the
 * retry reads fresh metadata from another broker and sends to the partitions' new leaders once the cluster has
 * moved them. Only while the pool keeps another broker that has not timed out itself lately: a pool left with
 * only silent brokers would ask them forever. Connecting to it again while it stays silent costs a short
 * probe, not a request timeout (../_kafkajs_reconnect.ts). A send still waits out one request timeout on a
 * hung broker, so the agent's is short (./publisher.ts).
 *
 * And while a broker has timed out lately, the metadata is read from a broker that answers. kafkajs reads it
 * from any connected one, and when a freeze makes several requests time out together (a healthy leader's
 * too, waiting for the frozen follower), the first timeout's retry would often ask the frozen broker, not yet
 * dropped, and wait out another request timeout (seen as a 22 s gap in the failover test). Each known broker
 * is asked for its API versions, and the first to answer is read from. Meanwhile metadata requests, and
 * these probes, go on the connection kafkajs keeps for fetches, which a producer never uses: on the other,
 * they would wait behind a produce, which a healthy leader holds while it waits for its in-sync replicas.
 *
 * Applied in every isolate that publishes (kafkajs's modules are per isolate and shared by its clients).
 *
 * @module
 */
// @ts-types="../_kafkajs_broker.d.ts"
import Broker from "kafkajs/src/broker/index.js";
// @ts-types="../_kafkajs_broker_pool.d.ts"
import BrokerPool from "kafkajs/src/cluster/brokerPool.js";
// @ts-types="../_kafkajs_connection_pool.d.ts"
import ConnectionPool from "kafkajs/src/network/connectionPool.js";
import {
  abandon,
  anySilent,
  connectUnprobed,
  fixKafkajsReconnect,
  isRequestTimeout,
  isSilent,
  markAnswered,
  markSilent,
  probe,
  PROBE_MS,
} from "../_kafkajs_reconnect.ts";
import { deadline } from "../async.ts";

/**
 * The connection of a broker that kafkajs uses only for fetches, which a producer never sends: while a broker
 * has timed out lately, metadata goes there, and probes. On the other, a request waits for the ones before it
 * (Kafka answers a connection's requests one at a time, in order), and a produce may wait long for its
 * in-sync replicas: seen holding a metadata read for 15 s, until the frozen follower woke. Only then: it is a
 * second connection to each broker, which a broker at its connection limit may refuse.
 */
const SPARE_CONNECTION = 1;
/** Kafka's Metadata request. */
const METADATA_API_KEY = 3;

/**
 * How long a broker whose request timed out has to answer a probe before it is dropped: a live one answers in
 * milliseconds, and the send's retry waits for the verdict. One that is only too loaded to answer in time is
 * dropped, as it was before the probe.
 */
const DROP_PROBE_MS = 1_000;

/** The pool each broker was last handed out by: where a silent one is dropped from. */
const poolOf = new WeakMap<Broker, BrokerPool>();
let applied = false;

/** Applies the fix once per isolate. */
export function fixKafkajsSilentBroker(): void {
  if (applied) return;
  applied = true;
  fixKafkajsReconnect();
  const findBroker = BrokerPool.prototype.findBroker;
  BrokerPool.prototype.findBroker = async function (this: BrokerPool, options: { nodeId: string }) {
    const broker = await findBroker.call(this, options);
    poolOf.set(broker, this);
    return broker;
  };
  const connectionFor = ConnectionPool.prototype.getConnectionByRequest;
  ConnectionPool.prototype.getConnectionByRequest = function (this: ConnectionPool, protocolRequest) {
    if (protocolRequest.request.apiKey === METADATA_API_KEY && anySilent()) {
      return this.getConnection(SPARE_CONNECTION);
    }
    return connectionFor.call(this, protocolRequest);
  };
  const findConnectedBroker = BrokerPool.prototype.findConnectedBroker;
  BrokerPool.prototype.findConnectedBroker = async function (this: BrokerPool) {
    const known = Object.entries(this.brokers);
    if (known.length < 2 || !anySilent()) return await findConnectedBroker.call(this);
    // Every known broker, not only the connected ones: after a restart the agent may be connected to no other
    // broker than the frozen one (seen in the failover test).
    const first = await Promise.any(known.map(([nodeId, broker]) => answering(broker).then(() => nodeId)))
      .catch(() => null);
    return first === null ? await findConnectedBroker.call(this) : await this.findBroker({ nodeId: first });
  };
  for (const request of ["produce", "metadata"] as const) {
    const send = Broker.prototype[request] as (this: Broker, ...args: unknown[]) => Promise<unknown>;
    Broker.prototype[request] = async function (this: Broker, ...args: unknown[]) {
      try {
        const answer = await send.apply(this, args);
        markAnswered(this.connectionPool);
        return answer;
      } catch (error) {
        if (isRequestTimeout(error)) await dropIfSilent(this);
        throw error;
      }
    };
  }
}

/**
 * Drops `broker`, whose request timed out, from the pool that handed it out, unless it answers a probe (a
 * healthy leader times out too while it waits for a frozen follower to leave its in-sync replicas: dropped,
 * it left the pool to the frozen broker alone, seen in the failover test), or the pool keeps no other broker
 * that has not timed out lately.
 */
async function dropIfSilent(broker: Broker): Promise<void> {
  markSilent(broker.connectionPool);
  if (await answering(broker, DROP_PROBE_MS).then(() => true, () => false)) return;
  const pool = poolOf.get(broker);
  if (pool === undefined) return;
  const known = Object.values(pool.brokers);
  if (!known.includes(broker) || known.every((other) => isSilent(other.connectionPool))) return;
  const { host, port } = broker.connectionPool;
  pool.removeBroker({ host, port });
  // A retry may have sent it another request while the probe ran.
  abandon(broker, "dropped: a probe went unanswered too");
}

/** `broker`, once it answers a probe on its spare connection; rejects when it does not answer in time. */
async function answering(broker: Broker, withinMs = PROBE_MS): Promise<Broker> {
  const connectedHere = !broker.isConnected();
  if (connectedHere) {
    // Connected as kafkajs connects a broker first: kafkajs takes a broker with any open connection for a
    // connected one, and a broker it never connected cannot send ("Broker not connected").
    const connecting = broker.connect();
    try {
      await deadline(connecting, PROBE_MS);
    } catch (error) {
      connecting.then(() => broker.disconnect(), () => broker.disconnect()).catch(() => {});
      throw error;
    }
  }
  // Opened without the probe a connection to a silent broker makes (../_kafkajs_reconnect.ts): probed here,
  // within `withinMs`.
  const spare = broker.connectionPool.pool[SPARE_CONNECTION]!;
  await deadline(connectUnprobed(spare), PROBE_MS);
  const failure = await probe(spare, broker.connectionPool, withinMs);
  if (failure === null) return broker;
  if (connectedHere) broker.disconnect().catch(() => {});
  throw failure;
}
