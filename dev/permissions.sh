# The permissions `monitor` runs with, shared by `deno task dev` and `deno task compile` (sourced).
# net: probes, Kafka and PostgreSQL; read: sites file, certificates and the bundled sql/ migrations;
# env: settings; sys: the host name (default agent name) and what kafkajs and postgres.js read of the OS.
MONITOR_PERMISSIONS=(--allow-net --allow-read --allow-env --allow-sys)
