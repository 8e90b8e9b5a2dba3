/**
 * Which messages of a batch Kafka acknowledged, from the `RecordMetadata` that kafkajs's `send()` returns.
 *
 * kafkajs 2.2.4 can resolve `send()` without having written every partition: when a produce request fails,
 * its retry re-sends only to brokers that have not answered yet (`brokersWithoutResponse` in
 * `src/producer/sendMessages.js`), so a partition whose leadership moved to a broker that had already
 * answered is never re-sent, and the metadata simply lacks it (tulios/kafkajs PR #1798, unmerged). The
 * publisher therefore checks the metadata against the partitions its messages went to and sends the rest
 * again; the sink stores a check once whatever the number of copies.
 *
 * @module
 */

/** The part of kafkajs's `RecordMetadata` this needs. */
export interface PartitionAck {
  readonly topicName: string;
  readonly partition: number;
  readonly errorCode: number;
}

/**
 * Returns the entries whose partition the metadata does not acknowledge, in their order. `partitionOf(i)`
 * is the partition entry `i` was sent to, or undefined when it was never assigned one (never sent).
 *
 * @example
 * ```ts
 * unacknowledged(["a", "b", "c"], (i) => [0, 1, 0][i], [{ topicName: "t", partition: 0, errorCode: 0 }], "t");
 * // ["b"]
 * ```
 */
export function unacknowledged<T>(
  entries: readonly T[],
  partitionOf: (index: number) => number | undefined,
  metadata: readonly PartitionAck[],
  topic: string,
): T[] {
  const acked = new Set<number>();
  for (const ack of metadata) {
    if (ack.topicName === topic && ack.errorCode === 0) acked.add(ack.partition);
  }
  return entries.filter((_, index) => {
    const partition = partitionOf(index);
    return partition === undefined || !acked.has(partition);
  });
}

/** The partitions among `partitions` that the metadata does not acknowledge, sorted, for log lines. */
export function missingPartitions(
  partitions: Iterable<number | undefined>,
  metadata: readonly PartitionAck[],
  topic: string,
): number[] {
  const acked = new Set(
    metadata.filter((ack) => ack.topicName === topic && ack.errorCode === 0).map((ack) => ack.partition),
  );
  const missing = new Set<number>();
  for (const partition of partitions) {
    if (partition !== undefined && !acked.has(partition)) missing.add(partition);
  }
  return [...missing].sort((a, b) => a - b);
}
