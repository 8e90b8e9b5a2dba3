-- monitor schema, version 3: history that lasts years and tells the truth.
--
-- * State per (site, location): a location is an agent's region label, or its agent name when it has none.
--   A site's state (up, degraded, down, stale) is derived from its locations when it is read.
-- * Incidents: one row per period a site was not up, written in the writer's transaction.
-- * Hourly and daily rollups per (site, location) with error-kind counts and a mergeable latency histogram,
--   written in the writer's transaction (so they are exact, like the raw rows), kept longer than raw checks.
-- * The query surface users and `monitor serve` read: site_status, location_status, incidents, site_uptime()
--   and location_uptime(). The old site_status table is replaced by the view of that name.
--
-- Existing data is carried over: location state, site state, open incidents and rollups are computed from the
-- raw checks still stored (incidents that ended before this migration are not reconstructed).

-- Location names -> small ids, so rollup rows stay narrow.
create table locations (
  id   integer generated always as identity primary key,
  name text not null unique
);

-- The latest check of each (site, location), moved only forward in time by that location's own checks (by
-- started_at, then check id). since: started_at of the first check of the current run of up (or down) checks;
-- consecutive_failures: length of the current run of down checks (0 when up). seen_at: the sink's clock when the
-- latest check was stored; staleness is judged on it (now() - seen_at > 3 intervals), so an agent's wrong clock
-- cannot make its location look fresh or stale. interval_ms: the site's probe interval as the location reported
-- it (60000 for messages without interval_ms).
--
-- acc_*: the rollup counts of the location's current hour (acc_hour), kept in this row, which the writer updates
-- for every check anyway, and moved into rollup_hourly and rollup_daily when the location's first check of a
-- later hour arrives. So a check costs one row update, not one per rollup table. Checks of an earlier hour (late
-- ones) go to the rollup tables directly. Queries add these counts to the rollups (uptime_rows()).
create table location_state (
  site_id              integer not null,
  location_id          integer not null,
  check_id             uuid not null,
  checked_at           timestamptz not null,
  seen_at              timestamptz not null,
  since                timestamptz not null,
  agent_id             integer not null,
  consecutive_failures integer not null,
  interval_ms          integer not null,
  duration_ms          real not null,
  status               smallint,
  up                   boolean not null,
  error_kind           check_error_kind,
  error_message        text,
  acc_hour             timestamptz,
  acc_checks           integer not null default 0,
  acc_up_checks        integer not null default 0,
  acc_error_counts     integer[],
  acc_latency          integer[],
  primary key (site_id, location_id)
) with (fillfactor = 70);

-- The state of each site as the writer last derived it from its fresh locations (never 'stale': staleness is
-- judged at read time), with when that state began and the open incident, if any.
create table site_state (
  site_id    integer primary key,
  state      text not null check (state in ('up', 'degraded', 'down')),
  since      timestamptz not null,
  changed_at timestamptz not null
) with (fillfactor = 70);

-- One row per period a site was not up: from the check that made it leave 'up' to the check that brought it
-- back (ended_at null while open). worst_state: 'down' if every fresh location was down at some point, else
-- 'degraded'. location_ids: every location that saw a failure during it. A site has at most one open incident.
create table site_incidents (
  id                  bigint generated always as identity primary key,
  site_id             integer not null,
  started_at          timestamptz not null,
  ended_at            timestamptz,
  worst_state         text not null check (worst_state in ('degraded', 'down')),
  location_ids        integer[] not null,
  first_error_kind    check_error_kind,
  first_error_message text,
  constraint site_incidents_order check (ended_at is null or ended_at >= started_at)
);
create unique index site_incidents_open_key on site_incidents (site_id) where ended_at is null;
create index site_incidents_site_started on site_incidents (site_id, started_at);
create index site_incidents_started on site_incidents (started_at);

-- Latency histograms. Bucket 0 holds durations under 1 ms; bucket i (1..158) holds
-- latency_thresholds()[i] <= duration < latency_thresholds()[i + 1] (1-based array), a factor of about 1.08 wide,
-- and bucket 159 everything from 190,965 ms. A percentile is reported as the geometric midpoint of its bucket,
-- so it is within 3.93 % of a value in that bucket (sqrt(1.08) - 1). The thresholds are 1.08^k rounded to 6
-- significant digits; src/db/latency.ts holds the same list, and a test checks they agree.
create function latency_thresholds() returns float8[] language sql immutable parallel safe as $$
  select '{1,1.08,1.1664,1.25971,1.36049,1.46933,1.58687,1.71382,1.85093,1.999,2.15892,2.33164,2.51817,2.71962,2.93719,3.17217,3.42594,3.70002,3.99602,4.3157,4.66096,5.03383,5.43654,5.87146,6.34118,6.84848,7.39635,7.98806,8.62711,9.31727,10.0627,10.8677,11.7371,12.676,13.6901,14.7853,15.9682,17.2456,18.6253,20.1153,21.7245,23.4625,25.3395,27.3666,29.556,31.9204,34.4741,37.232,40.2106,43.4274,46.9016,50.6537,54.706,59.0825,63.8091,68.9139,74.427,80.3811,86.8116,93.7565,101.257,109.358,118.106,127.555,137.759,148.78,160.682,173.537,187.42,202.413,218.606,236.095,254.983,275.381,297.412,321.205,346.901,374.653,404.625,436.995,471.955,509.711,550.488,594.527,642.089,693.456,748.933,808.848,873.555,943.44,1018.92,1100.43,1188.46,1283.54,1386.22,1497.12,1616.89,1746.24,1885.94,2036.82,2199.76,2375.74,2565.8,2771.07,2992.75,3232.17,3490.74,3770,4071.6,4397.33,4749.12,5129.05,5539.37,5982.52,6461.12,6978.01,7536.26,8139.16,8790.29,9493.51,10253,11073.2,11959.1,12915.8,13949.1,15065,16270.2,17571.8,18977.6,20495.8,22135.4,23906.3,25818.8,27884.3,30115,32524.2,35126.2,37936.3,40971.2,44248.9,47788.8,51611.9,55740.8,60200.1,65016.1,70217.4,75834.8,81901.5,88453.7,95530,103172,111426,120340,129967,140365,151594,163722,176819,190965}'::float8[]
$$;

-- The histogram bucket (0..159) of a duration.
create function latency_bucket(duration_ms real) returns integer language sql immutable parallel safe as $$
  select width_bucket(duration_ms::float8, latency_thresholds())
$$;

-- Rollup counts by subscript: error_counts[k] counts the k-th check_error_kind (enum order), latency[b] the up
-- checks in histogram bucket b. The arrays are trimmed to the subscripts used ('[47:49]={3,NULL,1}': three checks
-- in bucket 47, one in 49); an element that is NULL or outside the bounds counts 0; the array is null when
-- nothing was counted. Two are merged by adding the counts of equal subscripts.
create function counts_add(a integer[], b integer[]) returns integer[] language plpgsql immutable parallel safe as $$
declare
  result integer[];
begin
  if a is null then return b; end if;
  if b is null then return a; end if;
  result := array_fill(0, array[greatest(array_upper(a, 1), array_upper(b, 1))
                                - least(array_lower(a, 1), array_lower(b, 1)) + 1],
                       array[least(array_lower(a, 1), array_lower(b, 1))]);
  for i in array_lower(a, 1) .. array_upper(a, 1) loop result[i] := result[i] + coalesce(a[i], 0); end loop;
  for i in array_lower(b, 1) .. array_upper(b, 1) loop result[i] := result[i] + coalesce(b[i], 0); end loop;
  return result;
end
$$;

-- The same counts as (subscript, count) pairs with count > 0, in order: how tests compare two count arrays.
create function counts_pairs(a integer[]) returns text language sql immutable parallel safe as $$
  select string_agg(i || ':' || a[i], ',' order by i) from generate_subscripts(a, 1) i where coalesce(a[i], 0) > 0
$$;

-- The aggregate that merges stored histograms into one int8[] over buckets 0..159 (int8: a merged count can
-- pass 2^31 over years of many sites).
create function latency_accumulate(state bigint[], histogram integer[]) returns bigint[]
language plpgsql immutable parallel safe as $$
begin
  if histogram is null then return state; end if;
  if state is null then state := array_fill(0::bigint, array[160], array[0]); end if;
  for i in array_lower(histogram, 1) .. array_upper(histogram, 1) loop
    state[i] := state[i] + coalesce(histogram[i], 0);
  end loop;
  return state;
end
$$;

create aggregate latency_merge(integer[]) (sfunc = latency_accumulate, stype = bigint[]);

-- The sum of count arrays (counts_add over a set), e.g. the error counts of a site over a month.
create aggregate counts_sum(integer[]) (sfunc = counts_add, stype = integer[]);

-- The p-quantile (0..1) of a merged histogram: the geometric midpoint of the bucket holding the check of rank
-- floor(p * (n - 1)) (0-based, as percentile_cont's lower neighbour), rounded to 0.1 ms; 0.5 ms for bucket 0 and
-- 190,965 ms for the open top bucket. Null for an empty histogram.
create function latency_percentile(histogram bigint[], p float8) returns float8
language plpgsql immutable parallel safe as $$
declare
  total bigint := 0;
  rank bigint;
  seen bigint := 0;
  bounds float8[] := latency_thresholds();
begin
  if histogram is null then return null; end if;
  for i in array_lower(histogram, 1) .. array_upper(histogram, 1) loop total := total + histogram[i]; end loop;
  if total = 0 then return null; end if;
  rank := floor(p * (total - 1));
  for i in array_lower(histogram, 1) .. array_upper(histogram, 1) loop
    seen := seen + histogram[i];
    if seen > rank then
      return case
        when i = 0 then 0.5
        when i >= 159 then bounds[159]
        else round(sqrt(bounds[i] * bounds[i + 1])::numeric, 1)::float8
      end;
    end if;
  end loop;
  return null;
end
$$;

-- Hourly and daily rollups per (site, location). checks and up_checks count every check stored for the period
-- (late ones too); error_counts[k] counts the down checks of the k-th check_error_kind (enum order: dns, connect,
-- tls, timeout, http, content, redirects, other), null when there was none; latency is the histogram of
-- duration_ms over the up checks. Partitioned by month (hourly: rollup_hourly_pYYYYMM) and by year (daily:
-- rollup_daily_pYYYY) so that retention drops partitions; the sink makes them ahead of time.
create table rollup_hourly (
  bucket       timestamptz not null,
  site_id      integer not null,
  location_id  integer not null,
  checks       integer not null,
  up_checks    integer not null,
  error_counts integer[],
  latency      integer[],
  constraint rollup_hourly_pkey primary key (site_id, bucket, location_id)
) partition by range (bucket);
create table rollup_hourly_default partition of rollup_hourly default;

create table rollup_daily (
  bucket       timestamptz not null,
  site_id      integer not null,
  location_id  integer not null,
  checks       integer not null,
  up_checks    integer not null,
  error_counts integer[],
  latency      integer[],
  constraint rollup_daily_pkey primary key (site_id, bucket, location_id)
) partition by range (bucket);
create table rollup_daily_default partition of rollup_daily default;

-- The primary keys serve one site's history (site_id, bucket); a time range over every site (a monthly report,
-- status-page bars) is served by these block-range indexes on bucket: rows are written roughly in time order, so
-- a few kilobytes of index let such a query skip the rest of a month's or a year's partition.
create index rollup_hourly_bucket on rollup_hourly using brin (bucket);
create index rollup_daily_bucket on rollup_daily using brin (bucket);

-- The rollup rows the raw checks with from_time <= started_at < to_time give, per width ('1 hour' or '1 day'):
-- what the writer maintains, recomputed (used to backfill, and by tests to check the rollups are exact).
create function rollups_from_checks(from_time timestamptz, to_time timestamptz, width interval)
returns table (bucket timestamptz, site_id integer, location_id integer, checks integer, up_checks integer,
               error_counts integer[], latency integer[])
language sql stable as $$
  with c as (
    select date_bin(width, c.started_at, timestamptz '2000-01-03 00:00:00+00') as bucket, c.site_id,
           l.id as location_id, c.up, c.error_kind, case when c.up then latency_bucket(c.duration_ms) end as lb
    from checks c
    join agents a on a.id = c.agent_id
    join locations l on l.name = coalesce(a.region, a.name)
    where c.started_at >= from_time and c.started_at < to_time
  ),
  counts as (
    select c.bucket, c.site_id, c.location_id, count(*)::int as checks, count(*) filter (where c.up)::int as up_checks,
           case when bool_and(c.up) then null else array[
             count(*) filter (where c.error_kind = 'dns'), count(*) filter (where c.error_kind = 'connect'),
             count(*) filter (where c.error_kind = 'tls'), count(*) filter (where c.error_kind = 'timeout'),
             count(*) filter (where c.error_kind = 'http'), count(*) filter (where c.error_kind = 'content'),
             count(*) filter (where c.error_kind = 'redirects'), count(*) filter (where c.error_kind = 'other')
           ]::int[] end as error_counts
    from c group by 1, 2, 3
  ),
  buckets as (
    select c.bucket, c.site_id, c.location_id, c.lb, count(*)::int as n
    from c where c.lb is not null group by 1, 2, 3, 4
  ),
  histograms as (
    select g.bucket, g.site_id, g.location_id,
           (format('[%s:%s]=', g.lo, g.hi) || array_agg(coalesce(b.n, 0) order by i)::text)::int[] as latency
    from (select bucket, site_id, location_id, min(lb) as lo, max(lb) as hi from buckets group by 1, 2, 3) g
    cross join lateral generate_series(g.lo, g.hi) i
    left join buckets b on b.bucket = g.bucket and b.site_id = g.site_id and b.location_id = g.location_id
                       and b.lb = i
    group by g.bucket, g.site_id, g.location_id, g.lo, g.hi
  )
  select n.bucket, n.site_id, n.location_id, n.checks, n.up_checks, n.error_counts, h.latency
  from counts n
  left join histograms h using (bucket, site_id, location_id)
$$;

-- The rollup rows as stored plus the current hours' counts kept in location_state (not yet moved into the
-- tables), per width ('1 hour' or '1 day'): what rollups_from_checks() gives for the same range.
create function rollups_stored(from_time timestamptz, to_time timestamptz, width interval)
returns table (bucket timestamptz, site_id integer, location_id integer, checks integer, up_checks integer,
               error_counts integer[], latency integer[])
language sql stable as $$
  select r.bucket, r.site_id, r.location_id, sum(r.checks)::int, sum(r.up_checks)::int, counts_sum(r.error_counts),
         counts_sum(r.latency)
  from (
    select h.bucket, h.site_id, h.location_id, h.checks, h.up_checks, h.error_counts, h.latency
    from rollup_hourly h where width = interval '1 hour' and h.bucket >= from_time and h.bucket < to_time
    union all
    select d.bucket, d.site_id, d.location_id, d.checks, d.up_checks, d.error_counts, d.latency
    from rollup_daily d where width = interval '1 day' and d.bucket >= from_time and d.bucket < to_time
    union all
    select date_bin(width, x.acc_hour, timestamptz '2000-01-03 00:00:00+00'), x.site_id, x.location_id,
           x.acc_checks, x.acc_up_checks, x.acc_error_counts, x.acc_latency
    from location_state x
    where x.acc_hour is not null and date_bin(width, x.acc_hour, timestamptz '2000-01-03 00:00:00+00') >= from_time
      and date_bin(width, x.acc_hour, timestamptz '2000-01-03 00:00:00+00') < to_time
  ) r
  group by 1, 2, 3
$$;

-- Which rows of a range come from which tier. A range [from_time, to_time) is cut into: raw checks for the
-- partial hours at its ends, hourly rollups for whole hours, and daily rollups for whole days when the bucket
-- width is a whole number of days or months (or null). Part: 1 raw head, 2 hourly head, 3 daily, 4 hourly tail,
-- 5 raw tail; 6 is all the whole hours (2, 3 and 4 together), where the current hours' counts kept in
-- location_state belong. Tier: 0 = raw only (widths that are not whole hours), 1 = hourly, 2 = daily.
create function uptime_tier(width interval) returns integer language sql immutable parallel safe as $$
  select case
    when width is null then 2
    when date_part('year', width) * 12 + date_part('month', width) > 0 then 2
    when mod(extract(epoch from width)::numeric, 86400) = 0 then 2
    when mod(extract(epoch from width)::numeric, 3600) = 0 then 1
    else 0
  end
$$;

create function uptime_span(part integer, from_time timestamptz, to_time timestamptz, width interval)
returns tstzrange language sql immutable parallel safe as $$
  with b as (
    select uptime_tier(width) as tier,
           date_bin('1 hour', from_time - interval '1 microsecond', timestamptz '2000-01-03 00:00:00+00')
             + interval '1 hour' as h1,
           date_bin('1 hour', to_time, timestamptz '2000-01-03 00:00:00+00') as h2,
           date_bin('1 day', from_time - interval '1 microsecond', timestamptz '2000-01-03 00:00:00+00')
             + interval '1 day' as d1,
           date_bin('1 day', to_time, timestamptz '2000-01-03 00:00:00+00') as d2
  ), s as (
    select *, tier >= 1 and h1 <= h2 as hours, tier = 2 and d1 < d2 as days from b
  )
  select case
    when from_time >= to_time then 'empty'::tstzrange
    when part = 1 then case when hours then tstzrange(from_time, h1) else tstzrange(from_time, to_time) end
    when part = 5 then case when hours then tstzrange(h2, to_time) else 'empty'::tstzrange end
    when part = 3 then case when days then tstzrange(d1, d2) else 'empty'::tstzrange end
    when part = 2 then case when not hours then 'empty'::tstzrange when days then tstzrange(h1, d1)
                            else tstzrange(h1, h2) end
    when part = 4 then case when hours and days then tstzrange(d2, h2) else 'empty'::tstzrange end
    when part = 6 then case when hours and h1 < h2 then tstzrange(h1, h2) else 'empty'::tstzrange end
  end
  from s
$$;

-- The bucket a time falls in: from_time for a null width (one bucket for the whole range), UTC calendar months
-- for widths of whole months ('1 month', '3 months', '1 year'), else date_bin(width) from Monday 2000-01-03 UTC
-- (so '1 day' starts at UTC midnight and '1 week' on Monday). A width mixing months with days fails.
create function uptime_bucket(t timestamptz, width interval, from_time timestamptz) returns timestamptz
language sql immutable parallel safe as $$
  select case
    when width is null then from_time
    when date_part('year', width) * 12 + date_part('month', width) > 0
         and width = make_interval(months => (date_part('year', width) * 12 + date_part('month', width))::int)
      then (timestamp '2000-01-01 00:00:00' + make_interval(months => (
              floor(((date_part('year', t at time zone 'UTC') - 2000) * 12 + date_part('month', t at time zone 'UTC') - 1)
                    / (date_part('year', width) * 12 + date_part('month', width)))
              * (date_part('year', width) * 12 + date_part('month', width)))::int)) at time zone 'UTC'
    else date_bin(width, t, timestamptz '2000-01-03 00:00:00+00')
  end
$$;

-- Every stored check and rollup row of the range, per (site, location), as rows of the tier that answers it:
-- daily and hourly rollups for whole days and hours, plus the current hours' counts kept in location_state, and
-- raw checks for the partial hours at the ends.
create function uptime_rows(site_name text, from_time timestamptz, to_time timestamptz, width interval)
returns table (site_id integer, location_id integer, start timestamptz, checks integer, up_checks integer,
               latency integer[])
language sql stable as $$
  -- Each bound is a scalar subquery, computed once per query (and then used to prune partitions), not per row.
  select r.site_id, r.location_id, r.bucket, r.checks, r.up_checks, r.latency from rollup_daily r
  where r.bucket >= (select lower(uptime_span(3, from_time, to_time, width)))
    and r.bucket < (select upper(uptime_span(3, from_time, to_time, width)))
    and (site_name is null or r.site_id = (select id from sites where name = site_name))
  union all
  select r.site_id, r.location_id, r.bucket, r.checks, r.up_checks, r.latency from rollup_hourly r
  where r.bucket >= (select lower(uptime_span(2, from_time, to_time, width)))
    and r.bucket < (select upper(uptime_span(2, from_time, to_time, width)))
    and (site_name is null or r.site_id = (select id from sites where name = site_name))
  union all
  select r.site_id, r.location_id, r.bucket, r.checks, r.up_checks, r.latency from rollup_hourly r
  where r.bucket >= (select lower(uptime_span(4, from_time, to_time, width)))
    and r.bucket < (select upper(uptime_span(4, from_time, to_time, width)))
    and (site_name is null or r.site_id = (select id from sites where name = site_name))
  union all
  select x.site_id, x.location_id, x.acc_hour, x.acc_checks, x.acc_up_checks, x.acc_latency from location_state x
  where x.acc_hour >= (select lower(uptime_span(6, from_time, to_time, width)))
    and x.acc_hour < (select upper(uptime_span(6, from_time, to_time, width)))
    and (site_name is null or x.site_id = (select id from sites where name = site_name))
  union all
  select c.site_id, l.id, c.started_at, 1, c.up::int,
         case when c.up then array_fill(1, array[1], array[latency_bucket(c.duration_ms)]) end
  from checks c
  join agents a on a.id = c.agent_id
  join locations l on l.name = coalesce(a.region, a.name)
  where c.started_at >= (select lower(uptime_span(1, from_time, to_time, width)))
    and c.started_at < (select upper(uptime_span(1, from_time, to_time, width)))
    and (site_name is null or c.site_id = (select id from sites where name = site_name))
  union all
  select c.site_id, l.id, c.started_at, 1, c.up::int,
         case when c.up then array_fill(1, array[1], array[latency_bucket(c.duration_ms)]) end
  from checks c
  join agents a on a.id = c.agent_id
  join locations l on l.name = coalesce(a.region, a.name)
  where c.started_at >= (select lower(uptime_span(5, from_time, to_time, width)))
    and c.started_at < (select upper(uptime_span(5, from_time, to_time, width)))
    and (site_name is null or c.site_id = (select id from sites where name = site_name))
$$;

drop function site_uptime(text, timestamptz, timestamptz, interval);
drop view site_uptime_hourly;
drop view site_uptime_daily;

-- Uptime and response times per site and bucket over [from_time, to_time), for one site or (site_name null)
-- every site; bucket_width null gives one row per site for the whole range (bucket = from_time). Counts are
-- exact; p50/p95/p99 come from the histograms (within 4 % of the exact value, 0.1 ms resolution) and are null
-- without an up check. Whole hours come from rollups and the partial hours at the ends from raw checks, so a
-- range aligned to the hour keeps its answer when raw checks expire. A single SELECT, so the planner inlines it:
-- a query that does not select the percentiles does not merge histograms.
create function site_uptime(site_name text, from_time timestamptz, to_time timestamptz,
                            bucket_width interval default interval '1 hour')
returns table (site text, site_id integer, bucket timestamptz, checks bigint, up_checks bigint,
               uptime_percent numeric, p50_ms double precision, p95_ms double precision, p99_ms double precision)
language sql stable as $$
  select s.name, u.site_id, u.bucket, u.checks, u.up_checks, round(100.0 * u.up_checks / u.checks, 3),
         latency_percentile(u.latency, 0.5), latency_percentile(u.latency, 0.95), latency_percentile(u.latency, 0.99)
  from (
    select r.site_id, uptime_bucket(r.start, bucket_width, from_time) as bucket, sum(r.checks)::bigint as checks,
           sum(r.up_checks)::bigint as up_checks, latency_merge(r.latency) as latency
    from uptime_rows(site_name, from_time, to_time, bucket_width) r
    group by 1, 2
  ) u
  join sites s on s.id = u.site_id
  order by s.name, u.bucket
$$;

-- The same per (site, location).
create function location_uptime(site_name text, from_time timestamptz, to_time timestamptz,
                                bucket_width interval default interval '1 hour')
returns table (site text, location text, site_id integer, bucket timestamptz, checks bigint, up_checks bigint,
               uptime_percent numeric, p50_ms double precision, p95_ms double precision, p99_ms double precision)
language sql stable as $$
  select s.name, l.name, u.site_id, u.bucket, u.checks, u.up_checks, round(100.0 * u.up_checks / u.checks, 3),
         latency_percentile(u.latency, 0.5), latency_percentile(u.latency, 0.95), latency_percentile(u.latency, 0.99)
  from (
    select r.site_id, r.location_id, uptime_bucket(r.start, bucket_width, from_time) as bucket,
           sum(r.checks)::bigint as checks, sum(r.up_checks)::bigint as up_checks, latency_merge(r.latency) as latency
    from uptime_rows(site_name, from_time, to_time, bucket_width) r
    group by 1, 2, 3
  ) u
  join sites s on s.id = u.site_id
  join locations l on l.id = u.location_id
  order by s.name, l.name, u.bucket
$$;

-- One row per (site, location): its latest check and whether it has gone silent (nothing stored from it for 3
-- of its intervals, by the database's clock).
create view location_status as
select s.name as site, l.name as location, ls.up,
       ls.seen_at < now() - 3 * ls.interval_ms * interval '1 millisecond' as stale,
       ls.since, ls.checked_at, ls.consecutive_failures, ls.status, ls.duration_ms, ls.error_kind, ls.error_message,
       ls.interval_ms, a.name as agent, ls.seen_at, ls.check_id, ls.site_id, ls.location_id
from location_state ls
join sites s on s.id = ls.site_id
join locations l on l.id = ls.location_id
join agents a on a.id = ls.agent_id;

drop table site_status;

-- One row per site: 'up' (every fresh location up), 'degraded' (some fresh locations down), 'down' (every fresh
-- location down) or 'stale' (no fresh location). since: when the current state began (for 'stale', when the
-- last location went silent). checked_at: the newest check of any location. open_incident_started_at: the start
-- of the open incident, if any (it stays open while the site is stale).
create view site_status as
with per_site as (
  select ls.site_id,
         count(*) filter (where fresh and ls.up)::int as locations_up,
         count(*) filter (where fresh and not ls.up)::int as locations_down,
         count(*) filter (where not fresh)::int as locations_stale,
         max(ls.checked_at) as checked_at,
         max(silent_since) as silent_since,
         max(silent_since) filter (where not fresh) as last_silent_since
  from (
    select x.*, x.seen_at + 3 * x.interval_ms * interval '1 millisecond' as silent_since,
           x.seen_at >= now() - 3 * x.interval_ms * interval '1 millisecond' as fresh
    from location_state x
  ) ls
  group by ls.site_id
), derived as (
  select p.*, case
    when p.locations_up + p.locations_down = 0 then 'stale'
    when p.locations_down = 0 then 'up'
    when p.locations_up = 0 then 'down'
    else 'degraded'
  end as state
  from per_site p
)
select s.name as site, d.state,
       case
         when d.state = 'stale' then d.silent_since
         when d.state = st.state then st.since
         else greatest(st.since, d.last_silent_since)
       end as since,
       d.locations_up, d.locations_down, d.locations_stale, d.checked_at,
       i.started_at as open_incident_started_at, s.url, d.site_id
from derived d
join sites s on s.id = d.site_id
left join site_state st on st.site_id = d.site_id
left join site_incidents i on i.site_id = d.site_id and i.ended_at is null;

-- One row per period a site was not up, with the names of the locations that saw it.
create view incidents as
select s.name as site, i.started_at, i.ended_at, i.worst_state,
       array(select l.name from locations l where l.id = any(i.location_ids) order by l.name) as locations,
       i.first_error_kind, i.first_error_message,
       coalesce(i.ended_at, now()) - i.started_at as duration, i.id, i.site_id
from site_incidents i
join sites s on s.id = i.site_id;

-- Carry over what the raw checks say.
insert into locations (name)
select distinct coalesce(region, name) from agents order by 1;

insert into location_state (site_id, location_id, check_id, checked_at, seen_at, since, agent_id,
                            consecutive_failures, interval_ms, duration_ms, status, up, error_kind, error_message)
with c as (
  select c.*, l.id as location_id
  from checks c
  join agents a on a.id = c.agent_id
  join locations l on l.name = coalesce(a.region, a.name)
),
latest as (
  select distinct on (site_id, location_id) * from c order by site_id, location_id, started_at desc, id desc
),
flipped as (
  select c.site_id, c.location_id, max(c.started_at) as last_other
  from c join latest x on x.site_id = c.site_id and x.location_id = c.location_id and c.up <> x.up
  group by 1, 2
)
select x.site_id, x.location_id, x.id, x.started_at, least(x.started_at, now()),
       (select min(c.started_at) from c where c.site_id = x.site_id and c.location_id = x.location_id
          and c.started_at > coalesce(f.last_other, '-infinity')),
       x.agent_id,
       case when x.up then 0 else (select count(*) from c where c.site_id = x.site_id
                                     and c.location_id = x.location_id
                                     and c.started_at > coalesce(f.last_other, '-infinity')) end,
       60000, x.duration_ms, x.status, x.up, x.error_kind, x.error_message
from latest x
left join flipped f on f.site_id = x.site_id and f.location_id = x.location_id;

insert into site_state (site_id, state, since, changed_at)
select site_id,
       case when bool_and(up) then 'up' when bool_or(up) then 'degraded' else 'down' end,
       max(since), now()
from location_state group by site_id;

insert into site_incidents (site_id, started_at, worst_state, location_ids, first_error_kind, first_error_message)
select st.site_id, st.since, st.state,
       array(select ls.location_id from location_state ls where ls.site_id = st.site_id and not ls.up order by 1),
       e.error_kind, e.error_message
from site_state st
left join lateral (
  select ls.error_kind, ls.error_message from location_state ls
  where ls.site_id = st.site_id and not ls.up order by ls.since limit 1
) e on true
where st.state <> 'up';

insert into rollup_hourly (bucket, site_id, location_id, checks, up_checks, error_counts, latency)
select * from rollups_from_checks('-infinity', 'infinity', '1 hour');
insert into rollup_daily (bucket, site_id, location_id, checks, up_checks, error_counts, latency)
select * from rollups_from_checks('-infinity', 'infinity', '1 day');
