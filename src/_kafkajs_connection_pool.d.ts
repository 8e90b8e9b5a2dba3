/** The part of kafkajs 2.2.4's internal connection pool (`src/network/connectionPool.js`) that ./check/_kafkajs_silent_broker.ts patches. */
declare class ConnectionPool {
  /** The connection a request goes on: 1 for fetches, 0 for everything else. */
  getConnectionByRequest(protocolRequest: { request: { apiKey: number } }): Promise<unknown>;
  getConnection(index?: 0 | 1): Promise<unknown>;
}
export default ConnectionPool;
