/**
 * A loopback TCP proxy in front of one Kafka listener, for fault tests that need an answer lost after the
 * broker acted on the request: it forwards Kafka's size-prefixed frames both ways, and when armed it lets
 * the next Produce request through, swallows the broker's answer, cuts the connection and refuses service
 * for a while. The broker must advertise the proxy's port, so clients come back through it.
 *
 * @module
 */

const PRODUCE_API_KEY = 0;

/** Splits a byte stream into Kafka frames (a 4-byte big-endian size, then that many bytes). */
class FrameReader {
  #buffer = new Uint8Array(0);

  /** Adds bytes and returns the frames they complete, each with its size prefix. */
  push(bytes: Uint8Array): Uint8Array[] {
    const joined = new Uint8Array(this.#buffer.length + bytes.length);
    joined.set(this.#buffer);
    joined.set(bytes, this.#buffer.length);
    const frames: Uint8Array[] = [];
    let offset = 0;
    while (joined.length - offset >= 4) {
      const size = new DataView(joined.buffer, offset).getInt32(0);
      if (joined.length - offset < 4 + size) break;
      frames.push(joined.subarray(offset, offset + 4 + size));
      offset += 4 + size;
    }
    this.#buffer = joined.slice(offset);
    return frames;
  }
}

/** The proxy; {@linkcode KafkaProxy.loseNextProduceAnswer} arms the fault. */
export class KafkaProxy {
  readonly port: number;
  readonly #listener: Deno.Listener;
  readonly #open = new Set<Deno.Conn>();
  #armedOutageMs: number | null = null;
  #refuseUntil = 0;
  #lostAnswers = 0;
  #target: Deno.ConnectOptions | null = null;

  /** Listens at once on a free loopback port; connections are refused until {@linkcode forwardTo}. */
  constructor() {
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.port = (this.#listener.addr as Deno.NetAddr).port;
    this.#accept().catch(() => {}); // ends when the listener closes
  }

  /** Where connections go from now on. */
  forwardTo(target: Deno.ConnectOptions): void {
    this.#target = target;
  }

  /** Produce answers swallowed so far. */
  get lostAnswers(): number {
    return this.#lostAnswers;
  }

  /** The next Produce request reaches the broker, but its answer is dropped, then `outageMs` of refusals. */
  loseNextProduceAnswer(outageMs: number): void {
    this.#armedOutageMs = outageMs;
  }

  close(): void {
    this.#listener.close();
    for (const conn of this.#open) this.#closeQuietly(conn);
  }

  async #accept(): Promise<void> {
    for await (const client of this.#listener) {
      if (this.#target === null || Date.now() < this.#refuseUntil) {
        this.#closeQuietly(client);
        continue;
      }
      this.#serve(client).catch(() => this.#closeQuietly(client));
    }
  }

  async #serve(client: Deno.Conn): Promise<void> {
    this.#open.add(client);
    const broker = await Deno.connect(this.#target!);
    this.#open.add(broker);
    const doomed = new Map<number, number>(); // correlation id -> outage after its answer
    const cut = () => {
      this.#closeQuietly(client);
      this.#closeQuietly(broker);
    };
    const requests = this.#pump(client, broker, (frame) => {
      const view = new DataView(frame.buffer, frame.byteOffset);
      if (this.#armedOutageMs !== null && view.getInt16(4) === PRODUCE_API_KEY) {
        doomed.set(view.getInt32(8), this.#armedOutageMs);
        this.#armedOutageMs = null;
      }
      return true;
    });
    const answers = this.#pump(broker, client, (frame) => {
      const outageMs = doomed.get(new DataView(frame.buffer, frame.byteOffset).getInt32(4));
      if (outageMs === undefined) return true;
      this.#lostAnswers++;
      this.#refuseUntil = Date.now() + outageMs;
      cut();
      return false;
    });
    await Promise.allSettled([requests, answers]);
    cut();
  }

  /** Copies frames from one side to the other while `forward` says so; ends when either side closes. */
  async #pump(from: Deno.Conn, to: Deno.Conn, forward: (frame: Uint8Array) => boolean): Promise<void> {
    const reader = new FrameReader();
    const chunk = new Uint8Array(64 * 1024);
    for (let read = await from.read(chunk); read !== null; read = await from.read(chunk)) {
      for (const frame of reader.push(chunk.subarray(0, read))) {
        if (!forward(frame)) return;
        for (let written = 0; written < frame.length;) written += await to.write(frame.subarray(written));
      }
    }
    this.#closeQuietly(to);
  }

  #closeQuietly(conn: Deno.Conn): void {
    this.#open.delete(conn);
    try {
      conn.close();
    } catch {
      // already closed
    }
  }
}
