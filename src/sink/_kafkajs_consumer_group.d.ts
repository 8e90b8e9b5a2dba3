import type { AbandonedBroker } from "../_kafkajs_reconnect.ts";

/** The part of kafkajs 2.2.4's internal consumer group (`src/consumer/consumerGroup.js`) that ./_kafkajs_membership.ts and ./_kafkajs_lost_broker.ts patch. */
export interface GroupCluster {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  findGroupCoordinator(options: { groupId: string }): Promise<{
    leaveGroup(options: { groupId: string; memberId: string }): Promise<unknown>;
  }>;
}
/** The cluster a consumer group fetches through. */
export interface FetchCluster {
  getNodeIds(): number[];
  removeBroker(broker: { host: string; port: number }): void;
  readonly brokerPool: {
    readonly brokers: Record<string, AbandonedBroker>;
  };
  findGroupCoordinatorMetadata(options: { groupId: string }): Promise<{ coordinator: { nodeId: number } }>;
}
declare class ConsumerGroup {
  readonly groupId: string;
  memberId: string | null;
  readonly generationId: number;
  /** The broker of the group's coordinator found at the last join. */
  readonly coordinator: { readonly nodeId: number } | null;
  readonly cluster: GroupCluster & FetchCluster;
  /** kafkajs's logger, which writes to the client's log creator. */
  readonly logger: { warn(message: string, extra?: Record<string, unknown>): void };
  leave(): Promise<void>;
  joinAndSync(): Promise<void>;
  recoverFromFetch(error: Error): Promise<void>;
  heartbeat(options: { interval: number }): Promise<void>;
}
export default ConsumerGroup;
