-- monitor schema, version 8: report ranges bounded by what is stored, calendar days in UTC whatever the
-- session's time zone, and day prefix sums only for the days they were built for.
--
-- 1. uptime_totals_sql() (0007) walked a one-bucket range month by month: from '-infinity' it never ended (a
--    month after -infinity is -infinity again) and grew its statement text until the server ran out of memory;
--    from year 1 it built a statement of 24,000 parts. Now a bound that is not a finite time is refused
--    (22023), and the walk visits only the months rollup_monthly holds rows for. The rest is 0007's, unchanged.
--
-- 2. uptime_span() (0003) and site_daily_bars() (0005) add calendar days (interval '1 day'), which follow the
--    session's time zone across a daylight-saving change: in a session set to America/New_York a range by day
--    lost most of its checks and the bars of a status page shifted by an hour. Both now run in UTC.
--
-- 3. rollup_day_to_hour (0006) was computed at the upgrade for the last 35 days only; a late check into an
--    older day then made rows holding that check alone, which reports trusted as the day's running sums (a
--    one-bucket range starting inside that day counted 145 checks of 73). Days before that cutoff now get no
--    rows (reports read them from their hourly rows, as 0007 intends), and the rows made so far are removed.

-- As in 0007, with the bounds checked and the months walked as said above.
create or replace function uptime_totals_sql(from_time timestamptz, to_time timestamptz) returns text
language plpgsql stable as $$
declare
  origin constant timestamptz := timestamptz '2000-01-03 00:00:00+00';
  day constant interval := interval '24 hours';
  h1 timestamptz;
  h2 timestamptz;
  d1 timestamptz;
  d2 timestamptz;
  next_hour timestamptz := date_bin('1 hour', now(), origin) + interval '1 hour';
  first_day timestamptz;
  end_day timestamptz;
  month timestamptz;
  month_end timestamptz;
  parts text[] := array[]::text[];
  acc tstzrange;
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
  if not isfinite(from_time) or not isfinite(to_time) then
    raise exception 'Cannot read [%, %) as one bucket: both ends must be finite times', from_time, to_time
      using errcode = '22023', hint = 'For all of the history, start at the first check''s time.';
  end if;
  if not uptime_reads_totals(from_time, to_time, null) then
    raise exception 'Cannot read [%, %) as month totals: it holds no whole UTC day', from_time, to_time
      using errcode = '22023';
  end if;
  h1 := date_bin('1 hour', from_time - interval '1 microsecond', origin) + interval '1 hour';
  h2 := date_bin('1 hour', to_time, origin);
  d1 := date_bin('1 day', from_time - interval '1 microsecond', origin) + day;
  d2 := date_bin('1 day', to_time, origin);
  first_day := d1;
  end_day := d2;
  acc := uptime_span(6, from_time, to_time, null);
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
  -- the daily rows when fewer (a single day). Only the months that hold rows (found through the index on
  -- bucket): a month without any adds nothing, and a range of centuries costs what its stored months do.
  month := utc_month(first_day);
  month := (select min(m.bucket) from rollup_monthly m where m.bucket >= month and m.bucket < end_day);
  while month is not null loop
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
    month := (select min(m.bucket) from rollup_monthly m where m.bucket >= month_end and m.bucket < end_day);
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
      (with moved as materialized (
         select r.site_id, r.location_id, r.checks, r.up_checks, r.latency
         from rollup_hourly r
         where r.bucket = %1$L and ($1 is null or r.site_id = $1))
       select m.site_id, m.location_id, 1 as sign, false as term, m.checks, m.up_checks, m.latency
       from moved m
       where exists (select from location_state x
                     where x.site_id = m.site_id and x.location_id = m.location_id and x.acc_hour = %1$L
                       and x.checked_at < %2$L))
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

alter function uptime_span(integer, timestamptz, timestamptz, interval) set timezone = 'UTC';
alter function site_daily_bars(integer) set timezone = 'UTC';

-- The first UTC day rollup_day_to_hour holds rows for: the day 0006's upgrade computed them from (35 days
-- before it was applied; a new database has nothing older). One row.
create table rollup_day_to_hour_from (
  since timestamptz not null
);
insert into rollup_day_to_hour_from (since)
select date_bin('1 day', coalesce((select applied_at from schema_migrations where name = '0006_prefix_sums.sql'),
                                  now()) - interval '35 days', timestamptz '2000-01-03 00:00:00+00');

delete from rollup_day_to_hour where bucket < (select since from rollup_day_to_hour_from);

-- Adds a change of one rollup_hourly row (hour: its bucket) to the day's prefix sums; as in 0006, except for a
-- day before rollup_day_to_hour_from, which has none.
create or replace function day_to_hour_add(site integer, location integer, hour timestamptz, delta_checks integer,
                                delta_up_checks integer, delta_latency integer[]) returns void
language plpgsql as $$
declare
  day timestamptz := date_bin('1 day', hour, timestamptz '2000-01-03 00:00:00+00');
  first_hour timestamptz;
  last record;
begin
  if day < (select since from rollup_day_to_hour_from) then return; end if;
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

-- As in 0006, and the days it computed count as built from then on.
create or replace function rebuild_day_to_hour(since timestamptz default '-infinity') returns void language sql as $$
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
  update rollup_day_to_hour_from
  set since = least(since, date_bin('1 day', greatest(rebuild_day_to_hour.since, '2000-01-03'),
                                    timestamptz '2000-01-03 00:00:00+00'));
$$;
