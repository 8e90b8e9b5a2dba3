-- Every batch updates the site_status rows of its sites. With room left on each page (30%), an update can put
-- the new row version on the same page (a HOT update: no new primary-key entry), and later updates reclaim the
-- old versions there; at the default 100% the table and its index grew with every batch until vacuum ran
-- (measured: 2.3 MB instead of 0.3 MB after 30 batches of 1,000 sites). Applies to pages written from now on.
alter table site_status set (fillfactor = 70);
