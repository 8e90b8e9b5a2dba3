/**
 * The sink's commits of offsets to Kafka (for lag tools), with a recording stand-in for kafkajs's consumer:
 * only `commitOffsets` is used, and what it is called with is what a user's lag tool would see.
 */
import { assertEquals } from "./_assert.ts";
import { KafkaCommits } from "../src/sink/_kafka_commits.ts";
import { silentLogger } from "../src/log.ts";
import { delay } from "../src/async.ts";

type Offsets = { topic: string; partition: number; offset: string }[];

/** A consumer whose commits are recorded as "partition:offset" lists; `fail` makes the next ones reject. */
function recordingConsumer() {
  const commits: string[] = [];
  const consumer = {
    fail: false,
    commitOffsets(offsets: Offsets): Promise<void> {
      if (consumer.fail) return Promise.reject(new Error("coordinator away"));
      commits.push(offsets.map((o) => `${o.partition}:${o.offset}`).sort().join(" "));
      return Promise.resolve();
    },
  };
  return { consumer, commits };
}

Deno.test("KafkaCommits: commits at once, then what comes within a second a second later, with no batch after it", async () => {
  const { consumer, commits } = recordingConsumer();
  const kafkaCommits = new KafkaCommits("t", silentLogger);
  kafkaCommits.use(consumer, [0, 1]);
  kafkaCommits.stored(0, "10");
  await delay(10);
  kafkaCommits.stored(0, "20");
  kafkaCommits.stored(1, "5");
  assertEquals(commits, ["0:10"]);
  await delay(2_000);
  assertEquals(commits, ["0:10", "0:20 1:5"]);
  await kafkaCommits.close(1_000);
});

Deno.test("KafkaCommits: an offset never moves back, and only owned partitions are committed", async () => {
  const { consumer, commits } = recordingConsumer();
  const kafkaCommits = new KafkaCommits("t", silentLogger);
  kafkaCommits.use(consumer, [0]);
  kafkaCommits.stored(0, "100");
  kafkaCommits.stored(0, "40"); // a write that ended after a later one
  kafkaCommits.stored(3, "7"); // not this member's
  // Partition 0 moves away with an offset pending (within the second): its new owner commits it, not this
  // member.
  kafkaCommits.stored(0, "120");
  kafkaCommits.use(consumer, [1]);
  kafkaCommits.stored(1, "3");
  await kafkaCommits.close(1_000);
  assertEquals(commits, ["0:100", "1:3"]);
});

Deno.test("KafkaCommits: a failed commit is sent again; nothing is sent after close()", async () => {
  const { consumer, commits } = recordingConsumer();
  const kafkaCommits = new KafkaCommits("t", silentLogger);
  kafkaCommits.use(consumer, [0, 1]);
  consumer.fail = true;
  kafkaCommits.stored(0, "10");
  await delay(10);
  consumer.fail = false;
  kafkaCommits.stored(1, "4");
  await delay(2_000);
  assertEquals(commits, ["0:10 1:4"]);
  kafkaCommits.stored(0, "11");
  await kafkaCommits.close(1_000);
  kafkaCommits.stored(0, "12");
  await delay(2_000);
  assertEquals(commits, ["0:10 1:4", "0:11"]);
});

Deno.test("KafkaCommits: detach() keeps what is pending for the consumer that replaces the stalled one", async () => {
  const stalled = recordingConsumer();
  const fresh = recordingConsumer();
  const kafkaCommits = new KafkaCommits("t", silentLogger);
  kafkaCommits.use(stalled.consumer, [0]);
  kafkaCommits.stored(0, "10");
  kafkaCommits.stored(0, "15");
  kafkaCommits.detach();
  await delay(2_000);
  assertEquals(stalled.commits, ["0:10"]);
  kafkaCommits.use(fresh.consumer, [0]);
  await delay(50);
  assertEquals(fresh.commits, ["0:15"]);
  await kafkaCommits.close(1_000);
});
