-- monitor schema, version 5: a daily rollup per site (all locations together), for the status page's bars.
--
-- site_daily holds, per site and UTC day, the sums of rollup_daily's checks and up_checks over the site's
-- locations. It is kept by a trigger on rollup_daily, so it moves in the same transaction as the rollups (and
-- with them, exactly once); the writer writes a rollup_daily row once per location and hour (or per late
-- check), so the trigger costs nothing per check. It halves the rows the 90-day bars of every site read, and
-- spares them the grouping by site and day (bench/db/history.ts).
--
-- Partitioned by UTC year like rollup_daily (site_daily_pYYYY), made and dropped together with rollup_daily's
-- partitions by the sink's partition maintenance (src/db/rollup_partitions.ts), so --daily-retention applies.

create table site_daily (
  bucket    timestamptz not null,
  site_id   integer not null,
  checks    integer not null,
  up_checks integer not null,
  constraint site_daily_pkey primary key (site_id, bucket)
) partition by range (bucket);
create table site_daily_default partition of site_daily default;
create index site_daily_bucket on site_daily using brin (bucket);

-- One site_daily partition for each rollup_daily partition there is, with the same bounds.
do $$
declare
  part record;
begin
  for part in
    select c.relname, pg_get_expr(c.relpartbound, c.oid) as bounds
    from pg_inherits i join pg_class c on c.oid = i.inhrelid
    where i.inhparent = 'rollup_daily'::regclass and c.relname <> 'rollup_daily_default'
  loop
    execute format('create table %I partition of site_daily %s',
                   replace(part.relname, 'rollup_daily_', 'site_daily_'), part.bounds);
  end loop;
end
$$;

insert into site_daily (bucket, site_id, checks, up_checks)
select bucket, site_id, sum(checks), sum(up_checks) from rollup_daily group by 1, 2;

-- Adds what a write to rollup_daily changed: new minus old. A row moved between partitions (a partition made
-- out of the default one) is a delete and an insert, which cancel out.
create function site_daily_follow() returns trigger language plpgsql as $$
begin
  if tg_op in ('UPDATE', 'DELETE') then
    insert into site_daily as s (bucket, site_id, checks, up_checks)
    values (old.bucket, old.site_id, -old.checks, -old.up_checks)
    on conflict (site_id, bucket) do update
      set checks = s.checks + excluded.checks, up_checks = s.up_checks + excluded.up_checks;
  end if;
  if tg_op in ('INSERT', 'UPDATE') then
    insert into site_daily as s (bucket, site_id, checks, up_checks)
    values (new.bucket, new.site_id, new.checks, new.up_checks)
    on conflict (site_id, bucket) do update
      set checks = s.checks + excluded.checks, up_checks = s.up_checks + excluded.up_checks;
  end if;
  return null;
end
$$;

create trigger site_daily_follow after insert or update or delete on rollup_daily
for each row execute function site_daily_follow();

-- What a status page draws: one row per site, in name order, with one uptime figure per UTC day from `days - 1`
-- days ago to today (null for a day without checks), as site_uptime() gives them by day; read from site_daily
-- plus the current hours' counts kept in location_state (the hours site_uptime() adds from there).
create function site_daily_bars(days integer)
returns table (site text, site_id integer, first_day timestamptz, uptime_percent numeric[])
language plpgsql stable set jit = off set work_mem = '32MB' as $$
declare
  first_day timestamptz := date_bin('1 day', now(), timestamptz '2000-01-03 00:00:00+00')
                           - (days - 1) * interval '1 day';
begin
  if days is null or days < 1 then
    raise exception 'Cannot read daily bars as ''days'' must be a positive integer: current value is %', days
      using errcode = '22023';
  end if;
  -- The bounds are computed here, so that they are constants when the statement is planned (partitions pruned).
  -- The rows come sorted by site and day, so each site's arrays are built in day order without the per-group
  -- sort an aggregate's own ORDER BY costs (half the time on 2,000 sites x 90 days); the rare site with gaps
  -- places each figure by its day.
  return query execute $q$
    with acc as (
      select x.site_id, date_bin('1 day', x.acc_hour, timestamptz '2000-01-03 00:00:00+00') as bucket,
             sum(x.acc_checks)::int8 as checks, sum(x.acc_up_checks)::int8 as up_checks
      from location_state x
      where x.acc_hour >= $1 and x.acc_hour < $3 and x.acc_checks > 0
      group by 1, 2
    ), per_day as (
      -- site_daily has one row per site and day already: only the few days with current-hour counts are added.
      select coalesce(s.site_id, a.site_id) as site_id, coalesce(s.bucket, a.bucket) as bucket,
             coalesce(s.checks, 0) + coalesce(a.checks, 0) as checks,
             coalesce(s.up_checks, 0) + coalesce(a.up_checks, 0) as up_checks
      from (select * from site_daily where bucket >= $1 and bucket < $3 and checks > 0) s
      full join acc a on a.site_id = s.site_id and a.bucket = s.bucket
      order by 1, 2
    ), per_site as (
      select d.site_id, count(*) as n, array_agg(percent_up(d.checks, d.up_checks)) as figures,
             array_agg(d.bucket) as buckets,
             floor(date_part('epoch', min(d.bucket) - $1) / 86400)::int as first_i,
             floor(date_part('epoch', max(d.bucket) - $1) / 86400)::int as last_i
      from per_day d
      group by d.site_id
    )
    select s.name, s.id, $1, case
             when p.n = p.last_i - p.first_i + 1
               then array_fill(null::numeric, array[p.first_i]) || p.figures
                    || array_fill(null::numeric, array[$2 - 1 - p.last_i])
             else array(select p.figures[array_position(p.buckets, $1 + g * interval '1 day')]
                        from generate_series(0, $2 - 1) g order by g)
           end
    from sites s
    left join per_site p on p.site_id = s.id
    order by s.name
  $q$ using first_day, days, first_day + days * interval '1 day';
end
$$;
