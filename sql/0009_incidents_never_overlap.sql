-- monitor schema, version 9: a site's closed incidents never overlap.
--
-- The writer derives a site's state from each location's latest check as the checks arrive. A location whose
-- results arrive late (its agent cut off from Kafka, its outbox flushing afterwards) can open an incident back
-- in time, over one the site's other locations already opened and closed: two rows for one outage, whose
-- durations add up to more than the outage lasted, against the contract of the `incidents` view ("one row per
-- period a site was not up"). Now, whenever the writer closes an incident, the site's closed incidents that
-- overlap it become one: from the first start to the last end, worst `down` if any was, every location that
-- failed in any of them, and the first error of the one that started first (whose row is kept; the others are
-- deleted). An incident that ends exactly where the next starts is not merged. The open incident is left as it
-- is until it closes: the end of an incident it overlaps is still ahead of it.

-- Finds the incidents to merge by their end: only those ending after the earliest start in question can
-- overlap it, and closed incidents that never overlap are few per site past any time.
create index site_incidents_site_ended on site_incidents (site_id, ended_at) where ended_at is not null;

-- Merges, for each site of `sites`, the closed incidents that overlap each other and end at or after
-- `from_time` and start at or before `to_time` (the range of the incidents just closed); returns how many rows
-- were merged away.
create function merge_overlapping_incidents(sites int4[], from_time timestamptz, to_time timestamptz)
returns integer language plpgsql as $$
declare
  removed integer;
begin
  with candidates as (
    select i.id, i.site_id, i.started_at, i.ended_at, i.worst_state, i.location_ids,
           max(i.ended_at) over (partition by i.site_id order by i.started_at, i.id
                                 rows between unbounded preceding and 1 preceding) as reach
    from site_incidents i
    where i.site_id = any(sites) and i.ended_at is not null and i.ended_at >= from_time
      and i.started_at <= to_time
  ),
  islands as (
    -- An island is a run of incidents each starting before the latest end of those before it.
    select c.*, count(*) filter (where c.reach is null or c.started_at >= c.reach)
                  over (partition by c.site_id order by c.started_at, c.id) as island
    from candidates c
  ),
  groups as (
    select site_id, island, (array_agg(id order by started_at, id))[1] as keeper, max(ended_at) as ended_at,
           bool_or(worst_state = 'down') as any_down
    from islands
    group by site_id, island
    having count(*) > 1
  ),
  merged_locations as (
    select g.keeper, array_agg(distinct l.id order by l.id) as location_ids
    from groups g
    join islands i on i.site_id = g.site_id and i.island = g.island
    cross join lateral unnest(i.location_ids) as l(id)
    group by g.keeper
  ),
  kept as (
    update site_incidents k
    set ended_at = g.ended_at,
        worst_state = case when g.any_down then 'down' else 'degraded' end,
        location_ids = coalesce(m.location_ids, '{}')
    from groups g
    left join merged_locations m on m.keeper = g.keeper
    where k.id = g.keeper
    returning k.id
  )
  delete from site_incidents d
  using groups g, islands i
  where i.site_id = g.site_id and i.island = g.island and d.id = i.id and d.id <> g.keeper;
  get diagnostics removed = row_count;
  return removed;
end;
$$;

-- Incidents that overlap already.
select merge_overlapping_incidents(array(select distinct site_id from site_incidents), '-infinity', 'infinity');
