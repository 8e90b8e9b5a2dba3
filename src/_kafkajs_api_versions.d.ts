/** The part of kafkajs 2.2.4's ApiVersions request (`src/protocol/requests/apiVersions/index.js`) that ./_kafkajs_reconnect.ts sends. */
/** A request of version `version`, ready for a connection pool's `send`. */
export function protocol(options: { version: number }): () => {
  request: unknown;
  response: unknown;
  logResponseError: boolean;
};
