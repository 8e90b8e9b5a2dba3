-- monitor schema, version 6: prefix sums, so that a report over a month costs a few rows per location, not one
-- row a day and one an hour at its ends.
--
-- The monthly SLA report (every site, the last 30 days, with p95) read about 75 rollup rows per (site,
-- location), 29 daily ones and up to 46 hourly ones for the partial days at the two ends, and merged a latency
-- histogram for each (PL/pgSQL, about 4 microseconds a row); the raw checks of its last partial hour were found
-- by scanning the whole of today's partition. It took 470 ms for 2,000 sites in 2 locations
-- (bench/db/history.ts). Now a range read as one bucket (site_uptime() and location_uptime() with a null
-- width) that holds a whole UTC day is answered from prefix sums:
--
-- * rollup_month_to_date: per (site, location) and UTC day, the sums of rollup_daily's rows of that UTC month
--   up to and including that day, with a row for every day from the location's first to its last day with
--   checks in the month (a day without checks repeats the sum before it);
-- * rollup_monthly: per (site, location) and UTC month, the month's sums and its first and last day with
--   checks: the sum up to a day after the last one is the month's total, up to a day before the first, none;
-- * rollup_day_to_hour: the same within a UTC day, by hour, from the location's first to its last hour with
--   checks that day; the day's total is its rollup_daily row.
--
-- Days A..B of one month are the sum up to B minus the sum up to A - 1, and the partial day at the start of a
-- range is the whole day minus the sum up to the hour before the range: the report reads 3 to 5 rows per
-- (site, location). Its end, up to now, is the current day's prefix sum, and its current hour the counts
-- location_state keeps, not the raw checks (exact: see uptime_totals_sql()).
--
-- The tables follow rollup_daily and rollup_hourly through row triggers, in the writer's transaction, so they
-- move exactly once with them (and tests check they equal a recomputation). The writer writes a rollup row
-- once per location and hour (plus late checks), so the triggers run once per location and hour, each writing
-- one row or two (more only for a late check, up to the rows after it in its month or day). Partitioned like
-- the table each follows (the month tables by UTC year, rollup_day_to_hour by UTC month) and made and dropped
-- with it (src/db/rollup_partitions.ts), so --daily-retention and --hourly-retention apply.

create table rollup_monthly (
  bucket      timestamptz not null,
  site_id     integer not null,
  location_id integer not null,
  checks      integer not null,
  up_checks   integer not null,
  latency     integer[],
  first_day   timestamptz not null,
  last_day    timestamptz not null,
  constraint rollup_monthly_pkey primary key (site_id, location_id, bucket)
) partition by range (bucket);
create table rollup_monthly_default partition of rollup_monthly default;
create index rollup_monthly_bucket on rollup_monthly (bucket);

create table rollup_month_to_date (
  bucket      timestamptz not null,
  site_id     integer not null,
  location_id integer not null,
  checks      integer not null,
  up_checks   integer not null,
  latency     integer[],
  constraint rollup_month_to_date_pkey primary key (site_id, location_id, bucket)
) partition by range (bucket);
create table rollup_month_to_date_default partition of rollup_month_to_date default;
-- A B-tree, not a block-range index as on rollup_daily: the rows of one day are read together (every location's
-- sum up to that day), and rows updated later or filled in by a late check do not sit with their day.
create index rollup_month_to_date_bucket on rollup_month_to_date (bucket);

-- One partition of each for each rollup_daily partition there is, with the same bounds.
do $$
declare
  part record;
begin
  for part in
    select c.relname, pg_get_expr(c.relpartbound, c.oid) as bounds
    from pg_inherits i join pg_class c on c.oid = i.inhrelid
    where i.inhparent = 'rollup_daily'::regclass and c.relname <> 'rollup_daily_default'
  loop
    execute format('create table %I partition of rollup_monthly %s',
                   replace(part.relname, 'rollup_daily_', 'rollup_monthly_'), part.bounds);
    execute format('create table %I partition of rollup_month_to_date %s',
                   replace(part.relname, 'rollup_daily_', 'rollup_month_to_date_'), part.bounds);
  end loop;
end
$$;

-- The counts of a with every count negated (counts_add's rules: any lower bound, NULL elements count 0).
create function counts_negate(a integer[]) returns integer[] language plpgsql immutable parallel safe as $$
declare
  result integer[] := a;
begin
  if a is null then return null; end if;
  for i in array_lower(a, 1) .. array_upper(a, 1) loop result[i] := -coalesce(a[i], 0); end loop;
  return result;
end
$$;

-- The first instant of the UTC month of t.
create function utc_month(t timestamptz) returns timestamptz language sql stable parallel safe as $$
  select date_trunc('month', t, 'UTC')
$$;

-- Adds a change of one rollup_daily row (day: its bucket, a UTC midnight) to the month totals.
create function month_totals_add(site integer, location integer, day timestamptz, delta_checks integer,
                                 delta_up_checks integer, delta_latency integer[]) returns void
language plpgsql as $$
declare
  month timestamptz := utc_month(day);
  m record;
begin
  select r.first_day, r.last_day, r.checks, r.up_checks, r.latency into m
  from rollup_monthly r
  where r.site_id = site and r.location_id = location and r.bucket = month
  for update;
  if not found then
    insert into rollup_monthly (bucket, site_id, location_id, checks, up_checks, latency, first_day, last_day)
    values (month, site, location, delta_checks, delta_up_checks, delta_latency, day, day);
    insert into rollup_month_to_date (bucket, site_id, location_id, checks, up_checks, latency)
    values (day, site, location, delta_checks, delta_up_checks, delta_latency);
    return;
  end if;
  if day > m.last_day then
    -- The days after the last one with checks hold the month's total so far; the new day adds the change.
    insert into rollup_month_to_date (bucket, site_id, location_id, checks, up_checks, latency)
    select g, site, location, m.checks, m.up_checks, m.latency
    from generate_series(m.last_day + interval '24 hours', day - interval '24 hours', interval '24 hours') g;
    insert into rollup_month_to_date (bucket, site_id, location_id, checks, up_checks, latency)
    values (day, site, location, m.checks + delta_checks, m.up_checks + delta_up_checks,
            counts_add(m.latency, delta_latency));
  else
    if day < m.first_day then
      insert into rollup_month_to_date (bucket, site_id, location_id, checks, up_checks, latency)
      select g, site, location, delta_checks, delta_up_checks, delta_latency
      from generate_series(day, m.first_day - interval '24 hours', interval '24 hours') g;
    end if;
    update rollup_month_to_date t
    set checks = t.checks + delta_checks, up_checks = t.up_checks + delta_up_checks,
        latency = counts_add(t.latency, delta_latency)
    where t.site_id = site and t.location_id = location
      and t.bucket >= greatest(day, m.first_day) and t.bucket <= m.last_day;
  end if;
  update rollup_monthly r
  set checks = r.checks + delta_checks, up_checks = r.up_checks + delta_up_checks,
      latency = counts_add(r.latency, delta_latency), first_day = least(r.first_day, day),
      last_day = greatest(r.last_day, day)
  where r.site_id = site and r.location_id = location and r.bucket = month;
end
$$;

-- Adds a change of one rollup row to the prefix sums of `level`: 'month' (a rollup_daily row, to the month
-- totals) or 'day' (a rollup_hourly row, to the day's sums by hour).
create function prefix_sums_add(level text, site integer, location integer, bucket timestamptz,
                                delta_checks integer, delta_up_checks integer, delta_latency integer[])
returns void language plpgsql as $$
begin
  if level = 'month' then
    perform month_totals_add(site, location, bucket, delta_checks, delta_up_checks, delta_latency);
  elsif level = 'day' then
    perform day_to_hour_add(site, location, bucket, delta_checks, delta_up_checks, delta_latency);
  else
    raise exception 'Cannot add to prefix sums: level must be ''month'' or ''day'': got %', level;
  end if;
end
$$;

-- Adds what a write to a rollup table changed to the prefix sums named by the trigger's argument (see
-- prefix_sums_add()): new minus old (a delete and an insert when the key changes). The argument, not
-- tg_table_name, says which: the trigger fires on the table's partitions, under their own names.
create function prefix_sums_follow() returns trigger language plpgsql as $$
begin
  if tg_op = 'UPDATE' and (new.site_id, new.location_id, new.bucket) = (old.site_id, old.location_id, old.bucket)
  then
    if new.checks = old.checks and new.up_checks = old.up_checks and new.latency is not distinct from old.latency
    then
      return null;
    end if;
    perform prefix_sums_add(tg_argv[0], new.site_id, new.location_id, new.bucket, new.checks - old.checks,
                            new.up_checks - old.up_checks,
                            case when new.latency is distinct from old.latency
                              then counts_add(new.latency, counts_negate(old.latency)) end);
    return null;
  end if;
  if tg_op in ('UPDATE', 'DELETE') then
    perform prefix_sums_add(tg_argv[0], old.site_id, old.location_id, old.bucket, -old.checks, -old.up_checks,
                            counts_negate(old.latency));
  end if;
  if tg_op in ('UPDATE', 'INSERT') then
    perform prefix_sums_add(tg_argv[0], new.site_id, new.location_id, new.bucket, new.checks, new.up_checks,
                            new.latency);
  end if;
  return null;
end
$$;

create trigger month_totals_follow after insert or update or delete on rollup_daily
for each row execute function prefix_sums_follow('month');

-- Computes both tables afresh from rollup_daily: the rows the trigger would have written, had it run for every
-- row. For existing data (below), and for tools that load rollup_daily with the trigger off (the benchmarks).
create function rebuild_month_totals() returns void language sql as $$
  delete from rollup_month_to_date;
  delete from rollup_monthly;
  insert into rollup_monthly (bucket, site_id, location_id, checks, up_checks, latency, first_day, last_day)
  select utc_month(r.bucket), r.site_id, r.location_id, sum(r.checks), sum(r.up_checks),
         latency_sum(r.latency)::int4[], min(r.bucket), max(r.bucket)
  from rollup_daily r
  group by 1, 2, 3;
  insert into rollup_month_to_date (bucket, site_id, location_id, checks, up_checks, latency)
  select g.day, m.site_id, m.location_id, sum(coalesce(r.checks, 0)) over w, sum(coalesce(r.up_checks, 0)) over w,
         (latency_sum(r.latency) over w)::int4[]
  from rollup_monthly m
  cross join lateral generate_series(m.first_day, m.last_day, interval '24 hours') g(day)
  left join rollup_daily r on r.site_id = m.site_id and r.location_id = m.location_id and r.bucket = g.day
  window w as (partition by m.site_id, m.location_id, m.bucket order by g.day)
  order by g.day;
$$;

select rebuild_month_totals();

-- The same one level down: rollup_day_to_hour holds, per (site, location) and hour, the sums of rollup_hourly's
-- rows of that UTC day up to and including that hour, with a row for every hour from the location's first to
-- its last hour with checks that day. The sum up to an hour after the last one is the day's total:
-- rollup_daily's row (which holds its hourly rows' sums); up to an hour before the first one, nothing. So the
-- partial day at the start of a range is one row. Partitioned by UTC month like rollup_hourly, and made and
-- dropped with it (--hourly-retention).
create table rollup_day_to_hour (
  bucket      timestamptz not null,
  site_id     integer not null,
  location_id integer not null,
  checks      integer not null,
  up_checks   integer not null,
  latency     integer[],
  constraint rollup_day_to_hour_pkey primary key (site_id, location_id, bucket)
) partition by range (bucket);
create table rollup_day_to_hour_default partition of rollup_day_to_hour default;
create index rollup_day_to_hour_bucket on rollup_day_to_hour (bucket);

do $$
declare
  part record;
begin
  for part in
    select c.relname, pg_get_expr(c.relpartbound, c.oid) as bounds
    from pg_inherits i join pg_class c on c.oid = i.inhrelid
    where i.inhparent = 'rollup_hourly'::regclass and c.relname <> 'rollup_hourly_default'
  loop
    execute format('create table %I partition of rollup_day_to_hour %s',
                   replace(part.relname, 'rollup_hourly_', 'rollup_day_to_hour_'), part.bounds);
  end loop;
end
$$;

-- Adds a change of one rollup_hourly row (hour: its bucket) to the day's prefix sums.
create function day_to_hour_add(site integer, location integer, hour timestamptz, delta_checks integer,
                                delta_up_checks integer, delta_latency integer[]) returns void
language plpgsql as $$
declare
  day timestamptz := date_bin('1 day', hour, timestamptz '2000-01-03 00:00:00+00');
  first_hour timestamptz;
  last record;
begin
  select t.bucket, t.checks, t.up_checks, t.latency into last
  from rollup_day_to_hour t
  where t.site_id = site and t.location_id = location and t.bucket >= day and t.bucket < day + interval '24 hours'
  order by t.bucket desc limit 1
  for update;
  if not found then
    insert into rollup_day_to_hour (bucket, site_id, location_id, checks, up_checks, latency)
    values (hour, site, location, delta_checks, delta_up_checks, delta_latency);
  elsif hour > last.bucket then
    -- The hours after the last one with checks hold the day's sum so far; the new hour adds the change.
    insert into rollup_day_to_hour (bucket, site_id, location_id, checks, up_checks, latency)
    select g, site, location, last.checks, last.up_checks, last.latency
    from generate_series(last.bucket + interval '1 hour', hour - interval '1 hour', interval '1 hour') g;
    insert into rollup_day_to_hour (bucket, site_id, location_id, checks, up_checks, latency)
    values (hour, site, location, last.checks + delta_checks, last.up_checks + delta_up_checks,
            counts_add(last.latency, delta_latency));
  else
    select min(t.bucket) into first_hour
    from rollup_day_to_hour t
    where t.site_id = site and t.location_id = location and t.bucket >= day;
    if hour < first_hour then
      insert into rollup_day_to_hour (bucket, site_id, location_id, checks, up_checks, latency)
      select g, site, location, delta_checks, delta_up_checks, delta_latency
      from generate_series(hour, first_hour - interval '1 hour', interval '1 hour') g;
    end if;
    update rollup_day_to_hour t
    set checks = t.checks + delta_checks, up_checks = t.up_checks + delta_up_checks,
        latency = counts_add(t.latency, delta_latency)
    where t.site_id = site and t.location_id = location
      and t.bucket >= greatest(hour, first_hour) and t.bucket <= last.bucket;
  end if;
end
$$;

create trigger day_to_hour_follow after insert or update or delete on rollup_hourly
for each row execute function prefix_sums_follow('day');

-- Computes rollup_day_to_hour afresh from rollup_hourly for the UTC days from `since` on (every day by default),
-- as rebuild_month_totals() does its tables. A day left without rows is read from its hourly rows, as before.
create function rebuild_day_to_hour(since timestamptz default '-infinity') returns void language sql as $$
  delete from rollup_day_to_hour
  where bucket >= date_bin('1 day', greatest(since, '2000-01-03'), timestamptz '2000-01-03 00:00:00+00');
  insert into rollup_day_to_hour (bucket, site_id, location_id, checks, up_checks, latency)
  select g.hour, d.site_id, d.location_id, sum(coalesce(r.checks, 0)) over w,
         sum(coalesce(r.up_checks, 0)) over w, (latency_sum(r.latency) over w)::int4[]
  from (
    select date_bin('1 day', bucket, timestamptz '2000-01-03 00:00:00+00') as day, site_id, location_id,
           min(bucket) as first_hour, max(bucket) as last_hour
    from rollup_hourly
    where bucket >= date_bin('1 day', greatest(since, '2000-01-03'), timestamptz '2000-01-03 00:00:00+00')
    group by 1, 2, 3
  ) d
  cross join lateral generate_series(d.first_hour, d.last_hour, interval '1 hour') g(hour)
  left join rollup_hourly r on r.site_id = d.site_id and r.location_id = d.location_id and r.bucket = g.hour
  window w as (partition by d.site_id, d.location_id, d.day order by g.hour)
  order by g.hour;
$$;

-- The stored hours of the last 35 days (a report over the last 30 days starts in them): about 18 µs an hourly
-- row (measured), so an hour of upgrade for 400 days of 10,000 sites in 2 locations, were they all done.
-- Older days are read from their hourly rows until they expire.
select rebuild_day_to_hour(now() - interval '35 days');

-- The sum of histograms each taken `sign` times (1 or -1), as latency_sum() adds them.
create function latency_sum_signed_accumulate(state bigint[], histogram integer[], sign integer) returns bigint[]
language plpgsql immutable parallel safe as $$
declare
  i integer;
  n integer;
begin
  if histogram is null then return state; end if;
  if state is null then
    state := array_fill(0::bigint, array[1], array[array_lower(histogram, 1)]);
  end if;
  i := array_lower(histogram, 1);
  -- Two loops rather than a multiplication per element: this runs for every row a report merges.
  if sign > 0 then
    foreach n in array histogram loop
      state[i] := coalesce(state[i], 0) + coalesce(n, 0);
      i := i + 1;
    end loop;
  else
    foreach n in array histogram loop
      state[i] := coalesce(state[i], 0) - coalesce(n, 0);
      i := i + 1;
    end loop;
  end if;
  return state;
end
$$;

-- The histogram of a list of bucket numbers (latency_bucket() values): how raw checks are merged, one call per
-- location rather than one row per check.
create function latency_histogram(buckets integer[]) returns integer[]
language plpgsql immutable parallel safe as $$
declare
  result integer[];
  b integer;
begin
  if buckets is null or cardinality(buckets) = 0 then return null; end if;
  result := array_fill(0, array[1], array[buckets[1]]);
  foreach b in array buckets loop
    result[b] := coalesce(result[b], 0) + 1;
  end loop;
  return result;
end
$$;

create aggregate latency_sum_signed(integer[], integer) (
  sfunc = latency_sum_signed_accumulate, stype = bigint[], combinefunc = latency_sum_add, parallel = safe
);

-- Whether site_uptime() reads [from_time, to_time) as month totals: one bucket (a null width) holding at least
-- one whole UTC day.
create function uptime_reads_totals(from_time timestamptz, to_time timestamptz, width interval) returns boolean
language sql immutable parallel safe as $$
  select width is null and from_time < to_time
     and date_bin('1 day', from_time - interval '1 microsecond', timestamptz '2000-01-03 00:00:00+00')
         + interval '24 hours' < date_bin('1 day', to_time, timestamptz '2000-01-03 00:00:00+00')
$$;

-- The raw checks of one site from from_time (inclusive) to to_time (exclusive), summed per agent and bucket
-- (uptime_bucket(started_at, width, range_start)): checks, up checks and the histogram of the up checks. Read
-- through the primary key (site_id, started_at), so the partial hours of a range cost the checks they hold, not
-- a scan of their day's partition (which joining the checks to the sites became: 28.8 million rows a day for
-- 10,000 sites at 30 s from one location), and merged as one row per location, not one per check.
create function site_checks(site integer, from_time timestamptz, to_time timestamptz, width interval,
                            range_start timestamptz)
returns table (agent_id integer, start timestamptz, checks integer, up_checks integer, latency integer[])
language sql stable parallel safe as $$
  select c.agent_id, uptime_bucket(c.started_at, width, range_start), count(*)::int,
         count(*) filter (where c.up)::int,
         latency_histogram(array_agg(latency_bucket(c.duration_ms)) filter (where c.up))
  from checks c
  where c.site_id = site and c.started_at >= from_time and c.started_at < to_time
  group by 1, 2
$$;

-- The rows of [from_time, to_time) read as month totals, as an SQL statement with the bounds written in as
-- constants (so partitions are pruned when it is planned) and $1 for the one site id (null: every site). Its
-- columns: site_id, location_id, sign (each row counts sign times), term (a row of the prefix sums or a
-- subtracted row, not a stored check or rollup of the range), checks, up_checks, latency. Summed with their
-- signs, they give what uptime_rows_at() gives for the range summed:
--
-- * the whole days: for each month they touch, the prefix sum up to the last of them minus the one up to the
--   day before the first (when that is in the month);
-- * the partial day at the start, hours [h1, d1): the whole day minus its prefix sum up to the hour before h1;
-- * the partial day at the end, hours [d2, h2): the prefix sum up to the hour before h2, or, for a range that
--   ends in the current hour, the whole day minus its hourly rows from h2 on (none, unless an agent's clock
--   is ahead);
-- * the current hours' counts kept in location_state, and the raw checks of the partial hours at the ends, per
--   location; the partial hour at the end from location_state alone for a location whose current hour it is
--   and whose latest check is in the range (its counts hold every check of the hour).
--
-- Days whose hourly rollups have expired (--hourly-retention) are read as uptime_rows_at() reads them: their
-- partial hours are not counted.
create function uptime_totals_sql(from_time timestamptz, to_time timestamptz) returns text
language plpgsql stable as $$
declare
  origin constant timestamptz := timestamptz '2000-01-03 00:00:00+00';
  day constant interval := interval '24 hours';
  h1 timestamptz := date_bin('1 hour', from_time - interval '1 microsecond', origin) + interval '1 hour';
  h2 timestamptz := date_bin('1 hour', to_time, origin);
  d1 timestamptz := date_bin('1 day', from_time - interval '1 microsecond', origin) + day;
  d2 timestamptz := date_bin('1 day', to_time, origin);
  next_hour timestamptz := date_bin('1 hour', now(), origin) + interval '1 hour';
  first_day timestamptz := d1;
  end_day timestamptz := d2;
  month timestamptz;
  month_end timestamptz;
  parts text[] := array[]::text[];
  acc tstzrange := uptime_span(6, from_time, to_time, null);
  hourly text := $f$
    select r.site_id, r.location_id, %s as sign, %s as term, r.checks, r.up_checks, r.latency
    from rollup_hourly r where r.bucket >= %L and r.bucket < %L and ($1 is null or r.site_id = $1)$f$;
  -- The sum up to and including hour %2$L of day %3$L: its row; after the location's last hour that day, the
  -- day's total; before its first, nothing; for a location without rows that day (a day before the upgrade
  -- that computed them, touched since by a late check), the sum of its hourly rows. Told apart by lookups made
  -- only for a location without a row at that hour.
  day_prefix text := $f$
    select d.site_id, d.location_id, %1$s as sign, true as term,
           case k.pick when 'hour' then t.checks when 'day' then d.checks when 'hourly' then coalesce(h.checks, 0)
                       else 0 end as checks,
           case k.pick when 'hour' then t.up_checks when 'day' then d.up_checks
                       when 'hourly' then coalesce(h.up_checks, 0) else 0 end as up_checks,
           case k.pick when 'hour' then t.latency when 'day' then d.latency when 'hourly' then h.latency end
             as latency
    from rollup_daily d
    left join rollup_day_to_hour t
      on t.site_id = d.site_id and t.location_id = d.location_id and t.bucket = %2$L
    cross join lateral (
      select case
        when t.site_id is not null then 'hour'
        when exists (select from rollup_day_to_hour u
                     where u.site_id = d.site_id and u.location_id = d.location_id and u.bucket >= %3$L
                       and u.bucket < %2$L) then 'day'
        when exists (select from rollup_day_to_hour u
                     where u.site_id = d.site_id and u.location_id = d.location_id and u.bucket > %2$L
                       and u.bucket < %3$L::timestamptz + interval '24 hours') then 'none'
        else 'hourly'
      end as pick
    ) k
    left join lateral (
      select sum(r.checks)::int as checks, sum(r.up_checks)::int as up_checks, counts_sum(r.latency) as latency
      from rollup_hourly r
      where k.pick = 'hourly' and r.site_id = d.site_id and r.location_id = d.location_id and r.bucket >= %3$L
        and r.bucket <= %2$L
    ) h on true
    where d.bucket = %3$L and ($1 is null or d.site_id = $1)$f$;
  -- The sum up to and including day %2$L of month %3$L; after the location's last day, the month's total.
  month_prefix text := $f$
    select m.site_id, m.location_id, %1$s as sign, true as term,
           case when t.site_id is null then m.checks else t.checks end as checks,
           case when t.site_id is null then m.up_checks else t.up_checks end as up_checks,
           case when t.site_id is null then m.latency else t.latency end as latency
    from rollup_monthly m
    left join rollup_month_to_date t
      on t.site_id = m.site_id and t.location_id = m.location_id and t.bucket = %2$L
    where m.bucket = %3$L and m.first_day <= %2$L and ($1 is null or m.site_id = $1)$f$;
  raw text := $f$
    select s.id as site_id, l.id as location_id, 1 as sign, false as term, c.checks, c.up_checks, c.latency
    from sites s
    cross join lateral site_checks(s.id, %L, %L, null, null) c
    join agents a on a.id = c.agent_id
    join locations l on l.name = coalesce(a.region, a.name)
    where ($1 is null or s.id = $1)$f$;
begin
  if not uptime_reads_totals(from_time, to_time, null) then
    raise exception 'Cannot read [%, %) as month totals: it holds no whole UTC day', from_time, to_time
      using errcode = '22023';
  end if;
  if h1 < d1 then
    if exists (select from rollup_day_to_hour t where t.bucket >= d1 - day and t.bucket < d1) then
      first_day := d1 - day;
      parts := parts || format(day_prefix, -1, h1 - interval '1 hour', d1 - day);
    else
      parts := parts || format(hourly, 1, 'false', h1, d1);
    end if;
  end if;
  if d2 < h2 then
    if least(d2 + day, next_hour) - h2 <= interval '1 hour'
       and exists (select from rollup_hourly r where r.bucket >= d2 and r.bucket < d2 + day) then
      end_day := d2 + day;
      parts := parts || format(hourly, -1, 'true', h2, d2 + day);
    elsif exists (select from rollup_day_to_hour t where t.bucket >= d2 and t.bucket < d2 + day) then
      parts := parts || format(day_prefix, 1, h2 - interval '1 hour', d2);
    else
      parts := parts || format(hourly, 1, 'false', d2, h2);
    end if;
  end if;
  -- The whole days [first_day, end_day), month by month: two prefix sums (one from the month's first day), or
  -- the daily rows when fewer (a single day).
  month := utc_month(first_day);
  while month < end_day loop
    month_end := (month at time zone 'UTC' + interval '1 month') at time zone 'UTC';
    if first_day > month and least(end_day, month_end) - first_day <= day then
      parts := parts || format($f$
        select r.site_id, r.location_id, 1 as sign, false as term, r.checks, r.up_checks, r.latency
        from rollup_daily r where r.bucket = %L and ($1 is null or r.site_id = $1)$f$, first_day);
    else
      parts := parts || format(month_prefix, 1, least(end_day, month_end) - day, month);
      if first_day > month then
        parts := parts || format(month_prefix, -1, first_day - day, month);
      end if;
    end if;
    month := month_end;
  end loop;
  if not isempty(acc) then
    parts := parts || format($f$
      select x.site_id, x.location_id, 1 as sign, false as term, x.acc_checks as checks,
             x.acc_up_checks as up_checks, x.acc_latency as latency
      from location_state x
      where x.acc_hour >= %L and x.acc_hour < %L and ($1 is null or x.site_id = $1)$f$, lower(acc), upper(acc));
  end if;
  if from_time < h1 then parts := parts || format(raw, from_time, h1); end if;
  if h2 < to_time then
    -- The partial hour at the end [h2, to_time): a location whose current hour is h2 and whose latest check
    -- started before to_time has every check of that hour in the range, counted in its location_state row
    -- (and in rollup_hourly, for any of them moved there). Any other location's checks are read raw.
    parts := parts || format($f$
      select x.site_id, x.location_id, 1 as sign, false as term, x.acc_checks as checks,
             x.acc_up_checks as up_checks, x.acc_latency as latency
      from location_state x
      where x.acc_hour = %1$L and x.checked_at < %2$L and ($1 is null or x.site_id = $1)
      union all
      select r.site_id, r.location_id, 1 as sign, false as term, r.checks, r.up_checks, r.latency
      from rollup_hourly r
      where r.bucket = %1$L and ($1 is null or r.site_id = $1)
        and exists (select from location_state x
                    where x.site_id = r.site_id and x.location_id = r.location_id and x.acc_hour = %1$L
                      and x.checked_at < %2$L)
      union all
      select x.site_id, x.location_id, 1 as sign, false as term, c.checks, c.up_checks, c.latency
      from location_state x
      cross join lateral site_checks(x.site_id, %1$L, %2$L, null, null) c
      join agents a on a.id = c.agent_id
      join locations l on l.id = x.location_id and l.name = coalesce(a.region, a.name)
      where not coalesce(x.acc_hour = %1$L and x.checked_at < %2$L, false) and ($1 is null or x.site_id = $1)$f$,
      h2, to_time);
  end if;
  return array_to_string(parts, E'\n    union all');
end
$$;

-- 0004's uptime_rows_at(), with the raw checks of the partial hours read by site_checks(): the same sums.
create or replace function uptime_rows_at(only_site_id integer, from_time timestamptz, to_time timestamptz,
                                          width interval)
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
  select s.id, l.id, c.start, c.checks, c.up_checks, c.latency
  from sites s
  cross join lateral site_checks(s.id, lower(uptime_span(1, from_time, to_time, width)),
                                 upper(uptime_span(1, from_time, to_time, width)), width, from_time) c
  join agents a on a.id = c.agent_id
  join locations l on l.name = coalesce(a.region, a.name)
  where only_site_id is null or s.id = only_site_id
  union all
  select s.id, l.id, c.start, c.checks, c.up_checks, c.latency
  from sites s
  cross join lateral site_checks(s.id, lower(uptime_span(5, from_time, to_time, width)),
                                 upper(uptime_span(5, from_time, to_time, width)), width, from_time) c
  join agents a on a.id = c.agent_id
  join locations l on l.name = coalesce(a.region, a.name)
  where only_site_id is null or s.id = only_site_id
$$;

-- 0004's uptime_counts() and uptime_percentiles(), reading month totals where uptime_reads_totals() says so. A
-- location whose rows of the range cancel out (nothing stored for it in the range) gives no row, as before.
create or replace function uptime_counts(site_name text, from_time timestamptz, to_time timestamptz,
                                         width interval, by_location boolean)
returns table (site_id integer, location_id integer, bucket timestamptz, checks bigint, up_checks bigint)
language plpgsql stable set jit = off set work_mem = '32MB' as $$
declare
  only_site_id integer;
begin
  if site_name is not null then
    select s.id into only_site_id from sites s where s.name = site_name;
    if not found then return; end if;
  end if;
  if uptime_reads_totals(from_time, to_time, width) then
    return query execute format($q$
      select r.site_id, case when $2 then r.location_id end, $3::timestamptz,
             sum(r.sign * r.checks)::int8, sum(r.sign * r.up_checks)::int8
      from (%s) r
      group by 1, 2
      having bool_or(not r.term) or sum(r.sign * r.checks) <> 0
    $q$, uptime_totals_sql(from_time, to_time)) using only_site_id, by_location, from_time;
    return;
  end if;
  return query execute $q$
    select r.site_id, case when $5 then r.location_id end, uptime_bucket(r.start, $4, $2),
           sum(r.checks)::int8, sum(r.up_checks)::int8
    from uptime_rows_at($1, $2, $3, $4) r
    group by 1, 2, 3
  $q$ using only_site_id, from_time, to_time, width, by_location;
end
$$;

create or replace function uptime_percentiles(site_name text, from_time timestamptz, to_time timestamptz,
                                              width interval, by_location boolean)
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
  if uptime_reads_totals(from_time, to_time, width) then
    return query execute format($q$
      select x.site_id, x.location_id, $3::timestamptz, x.q[1], x.q[2], x.q[3]
      from (
        select r.site_id, case when $2 then r.location_id end as location_id,
               latency_quantiles(latency_sum_signed(r.latency, r.sign)) as q
        from (%s) r
        group by 1, 2
      ) x
    $q$, uptime_totals_sql(from_time, to_time)) using only_site_id, by_location, from_time;
    return;
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
