/** The part of kafkajs 2.2.4's internal consumer group (`src/consumer/consumerGroup.js`) that ./_kafkajs_membership.ts patches. */
export interface GroupCluster {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  findGroupCoordinator(options: { groupId: string }): Promise<{
    leaveGroup(options: { groupId: string; memberId: string }): Promise<unknown>;
  }>;
}
declare class ConsumerGroup {
  readonly groupId: string;
  memberId: string | null;
  readonly cluster: GroupCluster;
  leave(): Promise<void>;
  joinAndSync(): Promise<void>;
}
export default ConsumerGroup;
