import { assertEquals, assertRejects } from "./_assert.ts";
import { ConfigError } from "../src/args.ts";
import { readKafkaTlsFiles } from "../src/kafka_pem.ts";
import { tempFile } from "./_cli.ts";
import { selfSigned } from "./_tls.ts";

const one = await selfSigned();
const other = await selfSigned();
const CERT = await tempFile(one.cert, ".pem");
const KEY = await tempFile(one.key, ".key");
const OTHER_KEY = await tempFile(other.key, ".key");
const TEXT = await tempFile("not a certificate\n", ".pem");
const BROKEN = await tempFile("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", ".pem");

Deno.test("readKafkaTlsFiles() reads a CA, a certificate and its key", async () => {
  assertEquals(await readKafkaTlsFiles({ ca: CERT, cert: CERT, key: KEY }), {
    ca: one.cert,
    cert: one.cert,
    key: one.key,
  });
  assertEquals(await readKafkaTlsFiles({}), {});
});

/** [behaviour, the files, the exact ConfigError message] */
const BAD: [string, Parameters<typeof readKafkaTlsFiles>[0], string][] = [
  [
    "rejects a CA file that cannot be read",
    { ca: "/nonexistent/ca.pem" },
    "Cannot read '--kafka-ca' file '/nonexistent/ca.pem': No such file or directory (os error 2)",
  ],
  [
    "rejects a CA file that is not PEM",
    { ca: TEXT },
    `Cannot use '--kafka-ca' file '${TEXT}': it holds no PEM block: expected PEM certificates ` +
    "('-----BEGIN CERTIFICATE-----')",
  ],
  [
    "rejects a key given as the certificate, asking whether the two are swapped",
    { cert: KEY, key: CERT },
    `Cannot use '--kafka-cert' file '${KEY}': it holds a private key, not a PEM certificate: ` +
    "are '--kafka-cert' and '--kafka-key' swapped?",
  ],
  [
    "rejects a certificate given as the key, asking whether the two are swapped",
    { cert: CERT, key: CERT },
    `Cannot use '--kafka-key' file '${CERT}': it holds a certificate, not a PEM private key: ` +
    "are '--kafka-cert' and '--kafka-key' swapped?",
  ],
  [
    "rejects a certificate file that is not PEM",
    { cert: TEXT, key: KEY },
    `Cannot use '--kafka-cert' file '${TEXT}': it holds no PEM block, not a PEM certificate`,
  ],
  [
    "rejects a key that is not the certificate's",
    { cert: CERT, key: OTHER_KEY },
    `Cannot use '--kafka-key' file '${OTHER_KEY}': it is not the key of the certificate in '--kafka-cert' ` +
    `file '${CERT}'`,
  ],
];

for (const [behaviour, files, message] of BAD) {
  Deno.test(`readKafkaTlsFiles() ${behaviour}`, async () => {
    await assertRejects(() => readKafkaTlsFiles(files), ConfigError, message);
  });
}

Deno.test("readKafkaTlsFiles() rejects a PEM certificate block that does not parse", async () => {
  const error = await assertRejects(() => readKafkaTlsFiles({ cert: BROKEN, key: KEY }), ConfigError);
  assertEquals(
    error.message.startsWith(
      `Cannot use '--kafka-cert' file '${BROKEN}': its certificate cannot be parsed: `,
    ),
    true,
    error.message,
  );
});

Deno.test("cleanup", async () => {
  for (const path of [CERT, KEY, OTHER_KEY, TEXT, BROKEN]) await Deno.remove(path);
});
