# How `monitor` runs, shared by `deno task dev` and `deno task compile` (sourced; dev/permissions.ts mirrors it, and a
# test keeps the two equal).
# net: probes, Kafka and PostgreSQL; read: sites file, certificates and the bundled sql/ migrations;
# env: settings; sys: the host name (default agent name) and what kafkajs and postgres.js read of the OS.
# The V8 flag caps the young generation: V8 sizes it for the machine's memory (hundreds of MiB on 24 GiB) while
# the agent's live heap is about 30 MB; capped, 30,000 sites fit well under 300 MiB (bench/check/main.ts).
# The heap-growing flag lets the old generation grow to 2x what the last full GC kept, not V8's up to 4x: at
# 30,000 sites the agent keeps about 40 MB live, and with 4x its main heap reached 175 MB committed between
# full GCs (--trace-gc). The extra full GCs cost about 1 % of a core. Both flags apply to every isolate of the
# process, the publisher worker's too.
# The regexp flags bound a site's pattern match (src/check/regex.ts): a match that backtracks too much moves to
# V8's linear-time engine, and the `l` flag lets config loading ask V8 whether a pattern can run there. The
# agent refuses to start with a regex site without them; `deno compile` bakes them into dist/monitor.
MONITOR_PERMISSIONS=(--allow-net --allow-read --allow-env --allow-sys --v8-flags=--max-semi-space-size=8,--heap-growing-percent=100,--enable-experimental-regexp-engine,--enable-experimental-regexp-engine-on-excessive-backtracks)
