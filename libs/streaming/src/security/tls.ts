import { readFileSync } from 'node:fs';
import type { HttpsOptions } from '@nestjs/common/interfaces/external/https-options.interface';
import { StreamingConfigError } from '../config/streaming-config.error';
import { StreamingOptions } from '../config/streaming-options.interface';

/**
 * `httpsOptions` for `NestFactory.create()` from `tls_enabled`, `tls_cert_file`,
 * `tls_key_file` and `tls_ca_file`; undefined when TLS is off. With a CA file,
 * clients presenting a certificate are verified against it (not required).
 */
export function streamingHttpsOptions(
  options: Pick<StreamingOptions, 'tlsEnabled' | 'tlsCertFile' | 'tlsKeyFile' | 'tlsCaFile'>,
): HttpsOptions | undefined {
  if (!options.tlsEnabled) return undefined;
  const read = (key: string, path: string): Buffer => {
    try {
      return readFileSync(path);
    } catch (err) {
      throw new StreamingConfigError(
        `Invalid streaming configuration: ${key} = ${JSON.stringify(path)}: cannot read the file (${(err as Error).message})`,
      );
    }
  };
  const https: HttpsOptions = {
    cert: read('tlsCertFile (tls_cert_file, FORGE_STREAMING_TLS_CERT_FILE)', options.tlsCertFile),
    key: read('tlsKeyFile (tls_key_file, FORGE_STREAMING_TLS_KEY_FILE)', options.tlsKeyFile),
  };
  if (options.tlsCaFile) {
    https.ca = read('tlsCaFile (tls_ca_file, FORGE_STREAMING_TLS_CA_FILE)', options.tlsCaFile);
    https.requestCert = true;
    https.rejectUnauthorized = false;
  }
  return https;
}
