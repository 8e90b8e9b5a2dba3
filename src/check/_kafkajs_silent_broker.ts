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
 * The fix: a broker whose produce or metadata request timed out is dropped from its client's pool (as kafkajs
 * does for a closed connection) and its connection closed, so the retry reads fresh metadata from another
 * broker and sends to the partitions' new leaders once the cluster has moved them. Only while the pool keeps
 * another broker that has not timed out itself lately: a healthy leader may time out too while it waits for a
 * frozen follower to leave the in-sync replicas, and a pool left with only silent brokers would ask them
 * forever. And a connection whose handshake (ApiVersions on a client's first connection, or SASL) goes
 * unanswered fails as a connection error, which kafkajs answers by refreshing the metadata instead of
 * connecting again. A send still waits out one request timeout on a hung broker, so the agent's is short
 * (./publisher.ts).
 *
 * Applied in every isolate that publishes (kafkajs's modules are per isolate and shared by its clients).
 *
 * @module
 */
// @ts-types="./_kafkajs_broker.d.ts"
import Broker from "kafkajs/src/broker/index.js";
// @ts-types="./_kafkajs_broker_pool.d.ts"
import BrokerPool from "kafkajs/src/cluster/brokerPool.js";
// @ts-types="./_kafkajs_errors.d.ts"
import { KafkaJSConnectionError } from "kafkajs/src/errors.js";

/** The pool each broker was last handed out by: where a silent one is dropped from. */
const poolOf = new WeakMap<Broker, BrokerPool>();
/**
 * When each broker last left a request unanswered; an answer clears it. A broker object lives as long as its
 * node keeps its address, through restarts, so a mark older than {@linkcode SILENT_FOR_MS} is ignored.
 */
const silentSince = new WeakMap<Broker, number>();
const SILENT_FOR_MS = 60_000;

function isSilent(broker: Broker): boolean {
  const since = silentSince.get(broker);
  return since !== undefined && Date.now() - since < SILENT_FOR_MS;
}
let applied = false;

/** Applies the fix once per isolate. */
export function fixKafkajsSilentBroker(): void {
  if (applied) return;
  applied = true;
  const findBroker = BrokerPool.prototype.findBroker;
  BrokerPool.prototype.findBroker = async function (this: BrokerPool, options: { nodeId: string }) {
    const broker = await findBroker.call(this, options);
    poolOf.set(broker, this);
    return broker;
  };
  for (const request of ["produce", "metadata"] as const) {
    const send = Broker.prototype[request] as (this: Broker, ...args: unknown[]) => Promise<unknown>;
    Broker.prototype[request] = async function (this: Broker, ...args: unknown[]) {
      try {
        const answer = await send.apply(this, args);
        silentSince.delete(this);
        return answer;
      } catch (error) {
        if (isTimeout(error)) dropSilentBroker(this);
        throw error;
      }
    };
  }
  const connect = Broker.prototype.connect;
  Broker.prototype.connect = async function (this: Broker) {
    try {
      return await connect.call(this);
    } catch (error) {
      // kafkajs closes the connection itself (BrokerPool.connectBroker) after a connection error.
      if (!isTimeout(error)) throw error;
      throw silentOnConnect(this, error as Error);
    }
  };
}

function isTimeout(error: unknown): boolean {
  return error instanceof Error && error.name === "KafkaJSRequestTimeoutError";
}

/** Drops `broker` from the pool that handed it out, when the pool keeps one that has not timed out lately. */
function dropSilentBroker(broker: Broker): void {
  silentSince.set(broker, Date.now());
  const pool = poolOf.get(broker);
  if (pool === undefined) return;
  const known = Object.values(pool.brokers);
  if (!known.includes(broker) || known.every(isSilent)) return;
  const { host, port } = broker.connectionPool;
  pool.removeBroker({ host, port });
  broker.disconnect().catch(() => {});
}

/** The connection error a connection whose handshake went unanswered fails with. */
function silentOnConnect(broker: Broker, timeout: Error): KafkaJSConnectionError {
  const { host, port } = broker.connectionPool;
  return new KafkaJSConnectionError(
    `Connected to ${host}:${port}, but the broker did not answer (${timeout.message})`,
    { broker: `${host}:${port}`, code: "ETIMEDOUT" },
  );
}
