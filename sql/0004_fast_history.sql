-- monitor schema, version 4: faster history queries.
--
-- site_uptime() and location_uptime() keep their names, columns and answers (0003_history.sql), but are planned
-- and run differently (measured by bench/db/history.ts on a year of 2,000 sites x 2 locations):
--
-- * The rows of a range are read by statements planned with the range's bounds as constants (PL/pgSQL EXECUTE
--   with USING parameters is planned at each call with their values): the planner keeps only the partitions
--   and tiers the range needs, and no bound is computed per row. In 0003 the bounds were scalar subqueries and
--   every partition of six branches was planned at each call.
-- * Counts and percentiles are two functions, joined by site_uptime() (still an SQL function the planner
--   inlines) with a LEFT JOIN the planner drops when no percentile column is selected: a report of counts
--   merges no histogram, as in 0003.
-- * Histograms are merged by an aggregate whose state keeps only the buckets used and that parallel workers can
--   share, and p50/p95/p99 are read in one pass (latency_merge() and latency_percentile() stay, unchanged).
-- * JIT is off in these functions: compiling the plans cost 140-580 ms per call, more than running them.
--
-- site_daily_bars(days), what a status page draws, is in 0005_site_daily.sql with the table it reads.

-- The midpoint of histogram bucket b as latency_percentile() reports it: 0.5 ms for bucket 0, the lower bound
-- of the open top bucket (190,965 ms) for 159, else the geometric midpoint rounded to 0.1 ms.
create function latency_midpoint(b integer) returns float8 language sql immutable parallel safe as $$
  select case
    when b is null then null
    when b <= 0 then 0.5
    when b >= 159 then (latency_thresholds())[159]
    else round(sqrt((latency_thresholds())[b] * (latency_thresholds())[b + 1])::numeric, 1)::float8
  end
$$;

-- The rows of uptime_rows() for one site id (or every site: null), with the bounds as plain expressions, not
-- scalar subqueries: called with constant arguments (inside the EXECUTE statements below) every bound folds to a
-- constant when planned, so partitions are pruned at plan time and empty parts disappear from the plan. Parallel
-- safe: the planner decides whether a statement may run in parallel before it inlines this function, and an
-- unsafe (the default) function anywhere in it rules out parallel workers for the whole statement.
create function uptime_rows_at(only_site_id integer, from_time timestamptz, to_time timestamptz, width interval)
returns table (site_id integer, location_id integer, start timestamptz, checks integer, up_checks integer,
               latency integer[])
language sql stable parallel safe as $$
  select r.site_id, r.location_id, r.bucket, r.checks, r.up_checks, r.latency from rollup_daily r
  where r.bucket >= lower(uptime_span(3, from_time, to_time, width))
    and r.bucket < upper(uptime_span(3, from_time, to_time, width))
    and (only_site_id is null or r.site_id = only_site_id)
  union all
  select r.site_id, r.location_id, r.bucket, r.checks, r.up_checks, r.latency from rollup_hourly r
  where r.bucket >= lower(uptime_span(2, from_time, to_time, width))
    and r.bucket < upper(uptime_span(2, from_time, to_time, width))
    and (only_site_id is null or r.site_id = only_site_id)
  union all
  select r.site_id, r.location_id, r.bucket, r.checks, r.up_checks, r.latency from rollup_hourly r
  where r.bucket >= lower(uptime_span(4, from_time, to_time, width))
    and r.bucket < upper(uptime_span(4, from_time, to_time, width))
    and (only_site_id is null or r.site_id = only_site_id)
  union all
  select x.site_id, x.location_id, x.acc_hour, x.acc_checks, x.acc_up_checks, x.acc_latency from location_state x
  where x.acc_hour >= lower(uptime_span(6, from_time, to_time, width))
    and x.acc_hour < upper(uptime_span(6, from_time, to_time, width))
    and (only_site_id is null or x.site_id = only_site_id)
  union all
  select c.site_id, l.id, c.started_at, 1, c.up::int,
         case when c.up then array_fill(1, array[1], array[latency_bucket(c.duration_ms)]) end
  from checks c
  join agents a on a.id = c.agent_id
  join locations l on l.name = coalesce(a.region, a.name)
  where ((c.started_at >= lower(uptime_span(1, from_time, to_time, width))
          and c.started_at < upper(uptime_span(1, from_time, to_time, width)))
      or (c.started_at >= lower(uptime_span(5, from_time, to_time, width))
          and c.started_at < upper(uptime_span(5, from_time, to_time, width))))
    and (only_site_id is null or c.site_id = only_site_id)
$$;

-- Checks and up checks per site (and location, when by_location; else location_id is null) and bucket over
-- [from_time, to_time), by site_uptime()'s rules; no row for a site unknown by name.
create function uptime_counts(site_name text, from_time timestamptz, to_time timestamptz, width interval,
                              by_location boolean)
returns table (site_id integer, location_id integer, bucket timestamptz, checks bigint, up_checks bigint)
language plpgsql stable set jit = off set work_mem = '32MB' as $$
declare
  only_site_id integer;
begin
  if site_name is not null then
    select s.id into only_site_id from sites s where s.name = site_name;
    if not found then return; end if;
  end if;
  return query execute $q$
    select r.site_id, case when $5 then r.location_id end, uptime_bucket(r.start, $4, $2),
           sum(r.checks)::int8, sum(r.up_checks)::int8
    from uptime_rows_at($1, $2, $3, $4) r
    group by 1, 2, 3
  $q$ using only_site_id, from_time, to_time, width, by_location;
end
$$;

-- The sum of stored histograms, as latency_merge() gives it but trimmed to the subscripts used (its lower bound
-- is the lowest bucket seen; NULL elements count 0): a fixed 160-element state is copied on every row, which
-- made latency_merge() 40 % slower. With a combine function, so that a parallel plan can split the work.
create function latency_sum_add(state bigint[], histogram bigint[]) returns bigint[]
language plpgsql immutable parallel safe as $$
declare
  i integer;
  n bigint;
begin
  if histogram is null then return state; end if;
  if state is null then return histogram; end if;
  i := array_lower(histogram, 1);
  foreach n in array histogram loop
    state[i] := coalesce(state[i], 0) + coalesce(n, 0);
    i := i + 1;
  end loop;
  return state;
end
$$;

create function latency_sum_accumulate(state bigint[], histogram integer[]) returns bigint[]
language plpgsql immutable parallel safe as $$
declare
  i integer;
  n integer;
begin
  if histogram is null then return state; end if;
  if state is null then return histogram::bigint[]; end if;
  i := array_lower(histogram, 1);
  foreach n in array histogram loop
    state[i] := coalesce(state[i], 0) + coalesce(n, 0);
    i := i + 1;
  end loop;
  return state;
end
$$;

create aggregate latency_sum(integer[]) (
  sfunc = latency_sum_accumulate, stype = bigint[], combinefunc = latency_sum_add, parallel = safe
);

-- Uptime in percent with three decimals, as round(100.0 * up_checks / checks, 3) gives it (equal for every
-- count below 5 * 10^10), in integer arithmetic: numeric division cost 0.2 µs a row. Null without checks.
create function percent_up(checks bigint, up_checks bigint) returns numeric
language sql immutable parallel safe as $$
  select ((200000 * up_checks + checks) / nullif(2 * checks, 0))::numeric * 0.001
$$;

-- p50, p95 and p99 of a histogram as latency_percentile() computes each (the midpoint of the bucket holding the
-- check of rank floor(p * (n - 1))), in one pass; any lower bound, NULL elements count 0. Null when empty.
create function latency_quantiles(histogram bigint[]) returns float8[]
language plpgsql immutable parallel safe as $$
declare
  total bigint := 0;
  seen bigint := 0;
  n bigint;
  i integer;
  r50 bigint;
  r95 bigint;
  r99 bigint;
  q float8[] := array[null, null, null]::float8[];
begin
  if histogram is null then return null; end if;
  foreach n in array histogram loop total := total + coalesce(n, 0); end loop;
  if total = 0 then return null; end if;
  r50 := floor(0.5::float8 * (total - 1));
  r95 := floor(0.95::float8 * (total - 1));
  r99 := floor(0.99::float8 * (total - 1));
  i := array_lower(histogram, 1);
  foreach n in array histogram loop
    seen := seen + coalesce(n, 0);
    if q[1] is null and seen > r50 then q[1] := latency_midpoint(i); end if;
    if q[2] is null and seen > r95 then q[2] := latency_midpoint(i); end if;
    if seen > r99 then q[3] := latency_midpoint(i); return q; end if;
    i := i + 1;
  end loop;
  return q;
end
$$;

-- p50, p95 and p99 per site (and location, when by_location; else location_id is null) and bucket over
-- [from_time, to_time), as latency_percentile(latency_merge(...)) gives them; no row for a site unknown by name.
create function uptime_percentiles(site_name text, from_time timestamptz, to_time timestamptz, width interval,
                                   by_location boolean)
returns table (site_id integer, location_id integer, bucket timestamptz, p50_ms float8, p95_ms float8,
               p99_ms float8)
language plpgsql stable set jit = off set work_mem = '32MB' as $$
declare
  only_site_id integer;
begin
  if site_name is not null then
    select s.id into only_site_id from sites s where s.name = site_name;
    if not found then return; end if;
  end if;
  return query execute $q$
    select x.site_id, x.location_id, x.bucket, x.q[1], x.q[2], x.q[3]
    from (
      select r.site_id, case when $5 then r.location_id end as location_id,
             uptime_bucket(r.start, $4, $2) as bucket, latency_quantiles(latency_sum(r.latency)) as q
      from uptime_rows_at($1, $2, $3, $4) r
      group by 1, 2, 3
    ) x
  $q$ using only_site_id, from_time, to_time, width, by_location;
end
$$;

-- Same names, columns and answers as in 0003. An SQL function the planner inlines: the percentiles come from a
-- LEFT JOIN to a subquery that is unique on (site_id, bucket), which the planner removes when the query selects
-- no percentile column.
create or replace function site_uptime(site_name text, from_time timestamptz, to_time timestamptz,
                                       bucket_width interval default interval '1 hour')
returns table (site text, site_id integer, bucket timestamptz, checks bigint, up_checks bigint,
               uptime_percent numeric, p50_ms double precision, p95_ms double precision, p99_ms double precision)
language sql stable as $$
  select s.name, c.site_id, c.bucket, c.checks, c.up_checks, percent_up(c.checks, c.up_checks),
         p.p50_ms, p.p95_ms, p.p99_ms
  from uptime_counts(site_name, from_time, to_time, bucket_width, false) c
  join sites s on s.id = c.site_id
  left join (
    select x.site_id, x.bucket, min(x.p50_ms) as p50_ms, min(x.p95_ms) as p95_ms, min(x.p99_ms) as p99_ms
    from uptime_percentiles(site_name, from_time, to_time, bucket_width, false) x
    group by x.site_id, x.bucket
  ) p on p.site_id = c.site_id and p.bucket = c.bucket
  order by s.name, c.bucket
$$;

create or replace function location_uptime(site_name text, from_time timestamptz, to_time timestamptz,
                                           bucket_width interval default interval '1 hour')
returns table (site text, location text, site_id integer, bucket timestamptz, checks bigint, up_checks bigint,
               uptime_percent numeric, p50_ms double precision, p95_ms double precision, p99_ms double precision)
language sql stable as $$
  select s.name, l.name, c.site_id, c.bucket, c.checks, c.up_checks,
         percent_up(c.checks, c.up_checks), p.p50_ms, p.p95_ms, p.p99_ms
  from uptime_counts(site_name, from_time, to_time, bucket_width, true) c
  join sites s on s.id = c.site_id
  join locations l on l.id = c.location_id
  left join (
    select x.site_id, x.location_id, x.bucket, min(x.p50_ms) as p50_ms, min(x.p95_ms) as p95_ms,
           min(x.p99_ms) as p99_ms
    from uptime_percentiles(site_name, from_time, to_time, bucket_width, true) x
    group by x.site_id, x.location_id, x.bucket
  ) p on p.site_id = c.site_id and p.location_id = c.location_id and p.bucket = c.bucket
  order by s.name, l.name, c.bucket
$$;
