/**
 * Reads and checks the Kafka TLS files (`--kafka-ca`, `--kafka-cert`, `--kafka-key`) before anything
 * connects. A file that cannot be read, is not PEM, holds the wrong kind of block (the certificate and key
 * given the other way round) or a key that is not the certificate's is a configuration error: kafkajs would
 * only report it as a failed handshake, retried forever, or not at all.
 *
 * @module
 */
import { createPrivateKey, X509Certificate } from "node:crypto";
import { ConfigError } from "./args.ts";

/** The PEM contents of the TLS files, as kafkajs takes them. */
export interface KafkaTlsFiles {
  ca?: string;
  cert?: string;
  key?: string;
}

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g;

/** The labels of the PEM blocks in `text`, e.g. `["CERTIFICATE"]`. */
function pemLabels(text: string): string[] {
  return [...text.matchAll(BLOCK)].map((match) => match[1]!);
}

async function readFile(flag: string, path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    const reason = (error as Error).message.replace(/: readfile '.*'$/, "");
    throw new ConfigError(`Cannot read '--${flag}' file '${path}': ${reason}`, { cause: error });
  }
}

/** What a file holds, for messages: "a private key", "a certificate", "no PEM block". */
function holds(labels: readonly string[]): string {
  if (labels.length === 0) return "no PEM block";
  if (labels.some((label) => label.endsWith("PRIVATE KEY"))) return "a private key";
  if (labels.includes("CERTIFICATE")) return "a certificate";
  return `a PEM block '${labels[0]}'`;
}

/**
 * Reads the files that are set and checks them: the CA file holds at least one certificate, the
 * certificate file a certificate, the key file a private key, and the key is the certificate's.
 *
 * @example
 * ```ts
 * const tls = await readKafkaTlsFiles({ ca: "ca.pem", cert: "service.cert", key: "service.key" });
 * ```
 *
 * @throws {ConfigError} naming the flag and the file, e.g. `Cannot use '--kafka-cert' file 'a.key': it
 * holds a private key, not a certificate: are '--kafka-cert' and '--kafka-key' swapped?`
 */
export async function readKafkaTlsFiles(
  paths: {
    readonly ca?: string | undefined;
    readonly cert?: string | undefined;
    readonly key?: string | undefined;
  },
): Promise<KafkaTlsFiles> {
  const files: KafkaTlsFiles = {};
  const swapped = "are '--kafka-cert' and '--kafka-key' swapped?";
  if (paths.ca !== undefined) {
    const ca = await readFile("kafka-ca", paths.ca);
    const labels = pemLabels(ca);
    if (!labels.includes("CERTIFICATE")) {
      throw new ConfigError(
        `Cannot use '--kafka-ca' file '${paths.ca}': it holds ${holds(labels)}: expected PEM certificates ` +
          "('-----BEGIN CERTIFICATE-----')",
      );
    }
    files.ca = ca;
  }
  let certificate: X509Certificate | null = null;
  if (paths.cert !== undefined) {
    const cert = await readFile("kafka-cert", paths.cert);
    const labels = pemLabels(cert);
    if (!labels.includes("CERTIFICATE")) {
      const hint = holds(labels) === "a private key" ? `: ${swapped}` : "";
      throw new ConfigError(
        `Cannot use '--kafka-cert' file '${paths.cert}': it holds ${
          holds(labels)
        }, not a PEM certificate${hint}`,
      );
    }
    try {
      certificate = new X509Certificate(cert);
    } catch (error) {
      throw new ConfigError(
        `Cannot use '--kafka-cert' file '${paths.cert}': its certificate cannot be parsed: ${
          (error as Error).message
        }`,
      );
    }
    files.cert = cert;
  }
  if (paths.key !== undefined) {
    const key = await readFile("kafka-key", paths.key);
    const labels = pemLabels(key);
    if (!labels.some((label) => label.endsWith("PRIVATE KEY"))) {
      const hint = holds(labels) === "a certificate" ? `: ${swapped}` : "";
      throw new ConfigError(
        `Cannot use '--kafka-key' file '${paths.key}': it holds ${
          holds(labels)
        }, not a PEM private key${hint}`,
      );
    }
    let privateKey;
    try {
      privateKey = createPrivateKey(key);
    } catch (error) {
      throw new ConfigError(
        `Cannot use '--kafka-key' file '${paths.key}': its key cannot be parsed: ${(error as Error).message}`,
      );
    }
    if (certificate !== null && !certificate.checkPrivateKey(privateKey)) {
      throw new ConfigError(
        `Cannot use '--kafka-key' file '${paths.key}': it is not the key of the certificate in ` +
          `'--kafka-cert' file '${paths.cert}'`,
      );
    }
    files.key = key;
  }
  return files;
}
