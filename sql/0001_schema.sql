-- monitor schema, version 1: sites, agents, time-partitioned checks, latest status per site, dead letters,
-- Kafka consumer offsets, and the uptime views users query.
--
-- Applied by `monitor migrate` inside one transaction, under an advisory lock. Never edit this file once it
-- has been applied anywhere: add a new numbered file instead (the migrator refuses a changed checksum).

-- The order follows ERROR_KINDS in src/message.ts; new kinds are appended with ALTER TYPE ... ADD VALUE.
create type check_error_kind as enum ('dns', 'connect', 'tls', 'timeout', 'http', 'content', 'redirects', 'other');

-- One row per site name. url and regex are those of the newest check seen (a late, older check does not
-- overwrite them); first_seen and last_seen are the oldest and newest started_at seen.
create table sites (
  id         integer generated always as identity primary key,
  name       text not null unique,
  url        text not null,
  regex      text,
  first_seen timestamptz not null,
  last_seen  timestamptz not null
);

-- Where checks come from: (agent name, region) -> a small id, so check rows do not repeat strings.
create table agents (
  id     integer generated always as identity primary key,
  name   text not null,
  region text,
  constraint agents_name_region_key unique nulls not distinct (name, region)
);

-- One row per check, partitioned by day (UTC) on started_at. Partitions are named checks_pYYYYMMDD and are
-- made ahead and dropped past retention by the sink (src/db/partitions.ts); a check outside the prepared range
-- lands in checks_default and moves into its partition when that partition is created.
--
-- Columns are ordered widest alignment first so the row has no padding (agent_id is an integer, not a
-- smallint, because the two bytes saved would be lost to alignment anyway). There are no foreign keys to sites
-- and agents: the writer creates those rows in the same transaction and never deletes them, and a foreign-key
-- trigger per row would cost a third of the insert rate.
--
-- The primary key serves both idempotency (a check id is stored once: the same check always has the same site
-- and started_at, and a unique key on a partitioned table must contain the partition key) and "one site's
-- recent history" (WHERE site_id = ... ORDER BY started_at DESC). "Uptime over a day" is served by partition
-- pruning on started_at, "every site's state now" by site_status: no other index is needed.
create table checks (
  started_at      timestamptz not null,
  scheduled_at    timestamptz not null,
  cert_expires_at timestamptz,
  site_id         integer not null,
  bytes           integer,
  ttfb_ms         real,
  duration_ms     real not null,
  error_kind      check_error_kind,
  agent_id        integer not null,
  status          smallint,
  up              boolean not null,
  regex_matched   boolean,
  id              uuid not null,
  error_message   text,
  constraint checks_pkey primary key (site_id, started_at, id),
  constraint checks_error_iff_down check (up = (error_kind is null))
) partition by range (started_at);

create table checks_default partition of checks default;

-- The latest check of each site, updated in the same transaction as the checks, only forward in time
-- (by started_at, then check id). error_kind and error_message are those of the latest check (null when up).
-- state_since: started_at of the first check of the current run of up (or down) checks.
-- consecutive_failures: length of the current run of down checks (0 when up).
create table site_status (
  site_id              integer primary key references sites (id),
  check_id             uuid not null,
  checked_at           timestamptz not null,
  agent_id             integer not null references agents (id),
  up                   boolean not null,
  status               smallint,
  state_since          timestamptz not null,
  consecutive_failures integer not null,
  error_kind           check_error_kind,
  error_message        text,
  duration_ms          real not null,
  updated_at           timestamptz not null default now()
);

-- Messages the sink could not decode or store, kept raw for inspection and replay. A redelivered poison
-- message is stored once.
create table dead_letters (
  id          bigint generated always as identity primary key,
  received_at timestamptz not null default now(),
  topic       text not null,
  partition   integer not null,
  "offset"    bigint not null,
  key         bytea,
  payload     bytea,
  error       text not null,
  constraint dead_letters_topic_partition_offset_key unique (topic, partition, "offset")
);

-- The next Kafka offset to read per consumer group and topic-partition, written in the same transaction as the
-- rows it covers: the source of truth the sink seeks to on start and on every partition assignment.
create table consumer_offsets (
  group_id    text not null,
  topic       text not null,
  partition   integer not null,
  next_offset bigint not null,
  updated_at  timestamptz not null default now(),
  primary key (group_id, topic, partition)
);

-- Uptime and response times per site and UTC hour / UTC day. Percentiles are of duration_ms over the checks that
-- were up (a refused connection answers in a millisecond and would make a down site look fast); they are null
-- for a bucket without an up check.
--
-- A WHERE on site is pushed down to the primary key (site_id, started_at). A WHERE on bucket is applied to the
-- site's rows before grouping but cannot prune partitions; for a time range over many sites or many days, call
-- site_uptime() below, which filters on raw started_at and reads only the partitions in the range:
--
--   select * from site_uptime_hourly where site = 'example' and bucket >= now() - interval '24 hours';
--   select * from site_uptime('example', now() - interval '7 days', now(), '1 day');
--   select * from site_uptime(null, '2026-11-22', '2026-11-23', '1 day');   -- every site, one day
create view site_uptime_hourly as
select site, site_id, bucket, checks, up_checks,
       round(100.0 * up_checks / checks, 3) as uptime_percent,
       p[1] as p50_ms, p[2] as p95_ms, p[3] as p99_ms
from (
  select s.name as site, c.site_id, date_bin('1 hour', c.started_at, timestamptz '2000-01-01 00:00:00+00') as bucket,
         count(*) as checks, count(*) filter (where c.up) as up_checks,
         percentile_cont(array[0.5, 0.95, 0.99]) within group (order by c.duration_ms) filter (where c.up) as p
  from checks c
  join sites s on s.id = c.site_id
  group by s.name, c.site_id, 3
) hourly;

create view site_uptime_daily as
select site, site_id, bucket, checks, up_checks,
       round(100.0 * up_checks / checks, 3) as uptime_percent,
       p[1] as p50_ms, p[2] as p95_ms, p[3] as p99_ms
from (
  select s.name as site, c.site_id, date_bin('1 day', c.started_at, timestamptz '2000-01-01 00:00:00+00') as bucket,
         count(*) as checks, count(*) filter (where c.up) as up_checks,
         percentile_cont(array[0.5, 0.95, 0.99]) within group (order by c.duration_ms) filter (where c.up) as p
  from checks c
  join sites s on s.id = c.site_id
  group by s.name, c.site_id, 3
) daily;

-- The same figures for checks with from_time <= started_at < to_time, in buckets of bucket_width (aligned to
-- UTC midnight), for one site or (site_name null) every site. A single-statement SQL function: the planner
-- inlines it, so the range prunes partitions and the site uses the primary key.
create function site_uptime(site_name text, from_time timestamptz, to_time timestamptz,
                            bucket_width interval default interval '1 hour')
returns table (site text, site_id integer, bucket timestamptz, checks bigint, up_checks bigint,
               uptime_percent numeric, p50_ms double precision, p95_ms double precision, p99_ms double precision)
language sql stable
as $$
  select site, site_id, bucket, checks, up_checks,
         round(100.0 * up_checks / checks, 3),
         p[1], p[2], p[3]
  from (
    select s.name as site, c.site_id, date_bin(bucket_width, c.started_at, timestamptz '2000-01-01 00:00:00+00') as bucket,
           count(*) as checks, count(*) filter (where c.up) as up_checks,
           percentile_cont(array[0.5, 0.95, 0.99]) within group (order by c.duration_ms) filter (where c.up) as p
    from checks c
    join sites s on s.id = c.site_id
    where c.started_at >= from_time and c.started_at < to_time
      and (site_name is null or s.name = site_name)
    group by s.name, c.site_id, 3
  ) buckets
  order by site, bucket
$$;
