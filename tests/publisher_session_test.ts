import kafkajs from "kafkajs";
import { assertEquals } from "./_assert.ts";
import { keepsSession } from "../src/check/publisher.ts";

// kafkajs spreads its error classes into its CommonJS exports, which Deno's named imports do not see.
const {
  KafkaJSConnectionError,
  KafkaJSNonRetriableError,
  KafkaJSNumberOfRetriesExceeded,
  KafkaJSProtocolError,
} = kafkajs;

/** A Kafka error code as kafkajs raises it (its constructor reads `type` and `retriable` off the first argument). */
function protocolError(type: string, retriable: boolean): Error {
  return new KafkaJSProtocolError(Object.assign(new Error(type), { type, retriable }));
}

function retriesExceeded(cause: Error): Error {
  return new KafkaJSNumberOfRetriesExceeded(cause, { retryCount: 3, retryTime: 2_000 });
}

Deno.test("keepsSession: a lost connection or a timeout, even after kafkajs's retries, keeps the producer", () => {
  assertEquals(keepsSession(new KafkaJSConnectionError("Connection error: connect ECONNREFUSED")), true);
  assertEquals(keepsSession(retriesExceeded(new KafkaJSConnectionError("Connection closed"))), true);
  // The shape a failed reconnect inside a send takes (kafkajs's retrier wraps its own wrapper once more).
  const refused = new KafkaJSConnectionError("Connection error: connect ECONNREFUSED");
  // (its types lack the options argument that sets `cause`)
  const wrapped = Object.assign(new KafkaJSNonRetriableError(retriesExceeded(refused)), { cause: refused });
  assertEquals(keepsSession(wrapped), true);
});

Deno.test("keepsSession: a broken idempotence session or an unknown error replaces the producer", () => {
  for (const type of ["OUT_OF_ORDER_SEQUENCE_NUMBER", "UNKNOWN_PRODUCER_ID", "INVALID_PRODUCER_EPOCH"]) {
    const error = protocolError(type, false);
    assertEquals(keepsSession(error), false, type);
    assertEquals(keepsSession(retriesExceeded(error)), false, type);
  }
  assertEquals(keepsSession(new Error("something else")), false);
  assertEquals(keepsSession("not an error"), false);
});
