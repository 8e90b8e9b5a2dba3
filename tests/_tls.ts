/**
 * Certificates for TLS tests.
 *
 * @module
 */

/** Makes a self-signed certificate for localhost with `openssl` and returns it, its key and its notAfter. */
export async function selfSigned(days = 30): Promise<{ cert: string; key: string; expiresAt: string }> {
  const dir = await Deno.makeTempDir({ prefix: "monitor-tls-" });
  try {
    const run = async (...args: string[]) => {
      const output = await new Deno.Command("openssl", { args, stdout: "piped", stderr: "piped" }).output();
      if (!output.success) throw new Error(`openssl failed: ${new TextDecoder().decode(output.stderr)}`);
      return new TextDecoder().decode(output.stdout);
    };
    await run(
      ...["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", String(days), "-subj", "/CN=localhost"],
      ...["-addext", "subjectAltName=DNS:localhost", "-keyout", `${dir}/key.pem`, "-out", `${dir}/cert.pem`],
    );
    const endDate = (await run("x509", "-in", `${dir}/cert.pem`, "-noout", "-enddate")).trim();
    return {
      cert: await Deno.readTextFile(`${dir}/cert.pem`),
      key: await Deno.readTextFile(`${dir}/key.pem`),
      expiresAt: new Date(endDate.replace(/^notAfter=/, "")).toISOString(),
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
