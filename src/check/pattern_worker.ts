/**
 * The worker of ./pattern_workers.ts: matches a site's pattern on a body, off the agent's thread.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { matchPattern, type PatternMatch } from "./regex.ts";

/** What the agent sends: the pattern's source (compiled without flags, as config loading does) and the body. */
export interface PatternJob {
  readonly source: string;
  readonly body: Uint8Array;
}

const decoder = new TextDecoder();
// A site's pattern is compiled once per worker; bounded, so that many sites' patterns cannot fill memory.
const compiled = new Map<string, RegExp>();
const MAX_COMPILED = 1_000;

self.onmessage = (event: MessageEvent<PatternJob>) => {
  const { source, body } = event.data;
  let regex = compiled.get(source);
  if (regex === undefined) {
    if (compiled.size >= MAX_COMPILED) compiled.clear();
    regex = new RegExp(source);
    compiled.set(source, regex);
  }
  const found: PatternMatch = matchPattern(regex, decoder.decode(body));
  self.postMessage(found);
};
