/**
 * PostgreSQL for tests: the machine's shared server (one fresh database per test file, dropped afterwards)
 * and, for tests that stop, kill or TLS-enable a database, a private instance of their own.
 *
 * @module
 */

export { ADMIN_URL, createTestDatabase, type TestDatabase } from "../dev/services.ts";

/** A PostgreSQL server run by a test alone: its own data folder, port and (optionally) TLS. */
export interface PrivatePostgres {
  readonly port: number;
  readonly dataDir: string;
  /** URL of the `postgres` database as the superuser `postgres` (trust auth on loopback). */
  readonly url: string;
  /** With `tls: true`: the CA that signed the server certificate (CN and SAN `localhost`, IP 127.0.0.1). */
  readonly caFile: string | null;
  start(): Promise<void>;
  stop(mode?: "fast" | "immediate"): Promise<void>;
  /** Stops the server and removes its data folder. */
  destroy(): Promise<void>;
}

function pgBin(tool: string): string {
  const root = "/usr/lib/postgresql";
  const versions = [...Deno.readDirSync(root)].map((e) => e.name).sort((a, b) => Number(b) - Number(a));
  return `${root}/${versions[0]}/bin/${tool}`;
}

async function run(command: string, args: string[], cwd?: string): Promise<void> {
  const output = await new Deno.Command(command, {
    args,
    stdout: "piped",
    stderr: "piped",
    ...(cwd ? { cwd } : {}),
  })
    .output();
  if (!output.success) {
    const text = new TextDecoder().decode(output.stderr) + new TextDecoder().decode(output.stdout);
    throw new Error(`Cannot run ${command} ${args.join(" ")}: ${text.trim()}`);
  }
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

// initdb and postgres refuse to run as root; the machine's `postgres` account runs them.
const asPostgres = (args: string[]) => ["-u", "postgres", "--", ...args];

/** Creates and starts a private PostgreSQL instance. */
export async function startPrivatePostgres(options: { tls?: boolean } = {}): Promise<PrivatePostgres> {
  const port = freePort();
  const dataDir = await Deno.makeTempDir({ prefix: "monitor-pg-" });
  await Deno.chmod(dataDir, 0o755);
  await run("chown", ["postgres:postgres", dataDir]);
  const runningAsRoot = Deno.uid() === 0;
  const wrap = (tool: string, args: string[]) =>
    runningAsRoot ? run("runuser", asPostgres([pgBin(tool), ...args])) : run(pgBin(tool), args);
  await wrap("initdb", ["-D", `${dataDir}/data`, "-U", "postgres", "--auth=trust", "-E", "UTF8"]);
  let caFile: string | null = null;
  const conf = [
    `port = ${port}`,
    "listen_addresses = '127.0.0.1'",
    `unix_socket_directories = '${dataDir}'`,
    "fsync = off",
    "max_connections = 50",
  ];
  if (options.tls) {
    const certs = `${dataDir}/certs`;
    await Deno.mkdir(certs);
    await run("openssl", [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-days",
      "30",
      "-subj",
      "/CN=test-ca",
      "-keyout",
      "ca.key",
      "-out",
      "ca.pem",
    ], certs);
    await Deno.writeTextFile(`${certs}/san.ext`, "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
    await run(
      "openssl",
      [
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "server.key",
        "-out",
        "s.csr",
      ],
      certs,
    );
    await run("openssl", [
      "x509",
      "-req",
      "-in",
      "s.csr",
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-days",
      "30",
      "-extfile",
      "san.ext",
      "-out",
      "server.pem",
    ], certs);
    await Deno.copyFile(`${certs}/server.pem`, `${dataDir}/data/server.crt`);
    await Deno.copyFile(`${certs}/server.key`, `${dataDir}/data/server.key`);
    await run("chown", ["postgres:postgres", `${dataDir}/data/server.crt`, `${dataDir}/data/server.key`]);
    await Deno.chmod(`${dataDir}/data/server.key`, 0o600);
    conf.push("ssl = on");
    caFile = `${certs}/ca.pem`;
  }
  await Deno.writeTextFile(`${dataDir}/data/postgresql.conf`, conf.join("\n") + "\n", { append: true });
  await Deno.writeTextFile(
    `${dataDir}/data/pg_hba.conf`,
    "local all all trust\nhost all all 127.0.0.1/32 trust\nhostssl all all 127.0.0.1/32 trust\n",
  );
  const instance: PrivatePostgres = {
    port,
    dataDir,
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    caFile,
    start: () =>
      wrap("pg_ctl", ["-D", `${dataDir}/data`, "-l", `${dataDir}/server.log`, "-w", "-t", "60", "start"]),
    stop: (mode = "fast") => wrap("pg_ctl", ["-D", `${dataDir}/data`, "-m", mode, "-w", "-t", "60", "stop"]),
    async destroy() {
      await instance.stop("immediate").catch(() => {});
      await Deno.remove(dataDir, { recursive: true });
    },
  };
  await instance.start();
  return instance;
}
