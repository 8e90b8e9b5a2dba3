/** The part of kafkajs 2.2.4's internal errors module (`src/errors.js`) that ./_kafkajs_reconnect.ts uses. */
export { KafkaJSConnectionError } from "kafkajs";
