/**
 * A site's state rows as one string, for the sink's copy of them (./state_cache.ts): a JSON array of arrays,
 * without field names, that gives back exactly the rows it was made from. Held as objects, a site with three
 * locations cost about 2.5 KiB of V8 heap (a `Map` for its locations, one for their counts and two per
 * location in the counts, a `BigInt` per time, an object per row); as text it costs about a third of that,
 * in one object the garbage collector does not walk into. Private to src/db.
 *
 * @module
 */
import type { Accumulator } from "./rollups.ts";
import type { Incident, LocationState, SiteRecord } from "./state.ts";
import type { StoredSite } from "./state_store.ts";

/** A time in microseconds: a JSON number when it is exact as one, else decimal text. */
type Micros = number | string;

type EncodedLocation = [
  locationId: number,
  agentId: number,
  micros: Micros,
  checkId: string,
  checkedAt: string,
  seenAtMs: number,
  /** null when the same as `checkedAt` and `micros` (the location turned at its latest check). */
  since: string | null,
  sinceMicros: Micros | null,
  consecutiveFailures: number,
  intervalMs: number,
  durationMs: number,
  status: number | null,
  up: 0 | 1,
  errorKind: LocationState["errorKind"],
  errorMessage: string | null,
];

type EncodedCounts = [
  locationId: number,
  hour: Micros | null,
  checks: number,
  upChecks: number,
  /** [key, count, key, count, ...] */
  errors: number[],
  latency: number[],
];

type EncodedSite = [state: SiteRecord["state"], since: string, sinceMicros: Micros] | null;

type EncodedIncident = [
  id: number | null,
  startedAt: string,
  startedMicros: Micros,
  endedAt: string | null,
  worst: Incident["worst"],
  locationIds: readonly number[],
  firstErrorKind: Incident["firstErrorKind"],
  firstErrorMessage: string | null,
] | null;

type Encoded = [
  site: EncodedSite,
  open: EncodedIncident,
  locations: EncodedLocation[],
  counts: EncodedCounts[],
];

function micros(value: bigint): Micros {
  const number = Number(value);
  return Number.isSafeInteger(number) ? number : value.toString();
}

function flatten(counts: ReadonlyMap<number, number>): number[] {
  const flat: number[] = [];
  for (const [key, count] of counts) flat.push(key, count);
  return flat;
}

function unflatten(flat: readonly number[]): Map<number, number> {
  const counts = new Map<number, number>();
  for (let i = 0; i < flat.length; i += 2) counts.set(flat[i]!, flat[i + 1]!);
  return counts;
}

function encodeLocation(l: LocationState): EncodedLocation {
  const sameSince = l.since === l.checkedAt && l.sinceMicros === l.micros;
  return [
    l.locationId,
    l.agentId,
    micros(l.micros),
    l.checkId,
    l.checkedAt,
    l.seenAtMs,
    sameSince ? null : l.since,
    sameSince ? null : micros(l.sinceMicros),
    l.consecutiveFailures,
    l.intervalMs,
    l.durationMs,
    l.status,
    l.up ? 1 : 0,
    l.errorKind,
    l.errorMessage,
  ];
}

function decodeLocation(e: EncodedLocation): LocationState {
  const time = BigInt(e[2]);
  return {
    locationId: e[0],
    agentId: e[1],
    micros: time,
    checkId: e[3],
    checkedAt: e[4],
    seenAtMs: e[5],
    since: e[6] ?? e[4],
    sinceMicros: e[7] === null ? time : BigInt(e[7]),
    consecutiveFailures: e[8],
    intervalMs: e[9],
    durationMs: e[10],
    status: e[11],
    up: e[12] === 1,
    errorKind: e[13],
    errorMessage: e[14],
  };
}

/** The site's rows as text; {@linkcode decodeSite} gives them back. */
export function encodeSite(rows: StoredSite): string {
  const { site, open } = rows;
  const encoded: Encoded = [
    site === null ? null : [site.state, site.since, micros(site.sinceMicros)],
    open === null ? null : [
      open.id,
      open.startedAt,
      micros(open.startedMicros),
      open.endedAt,
      open.worst,
      open.locationIds,
      open.firstErrorKind,
      open.firstErrorMessage,
    ],
    [...rows.locations.values()].map(encodeLocation),
    [...rows.accumulators].map(([locationId, counts]) => [
      locationId,
      counts.hour === null ? null : micros(counts.hour),
      counts.checks,
      counts.upChecks,
      flatten(counts.errors),
      flatten(counts.latency),
    ]),
  ];
  return JSON.stringify(encoded);
}

/** The rows {@linkcode encodeSite} was given, in maps of their own (a batch may change them). */
export function decodeSite(text: string): StoredSite {
  const [site, open, locations, counts] = JSON.parse(text) as Encoded;
  return {
    locations: new Map(locations.map((e) => [e[0], decodeLocation(e)])),
    accumulators: new Map(counts.map((e): [number, Accumulator] => [e[0], {
      hour: e[1] === null ? null : BigInt(e[1]),
      checks: e[2],
      upChecks: e[3],
      errors: unflatten(e[4]),
      latency: unflatten(e[5]),
    }])),
    site: site === null ? null : { state: site[0], since: site[1], sinceMicros: BigInt(site[2]) },
    open: open === null ? null : {
      id: open[0],
      startedAt: open[1],
      startedMicros: BigInt(open[2]),
      endedAt: open[3],
      worst: open[4],
      locationIds: open[5],
      firstErrorKind: open[6],
      firstErrorMessage: open[7],
    },
  };
}
