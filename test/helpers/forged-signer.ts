// A code-signing certificate that the SERVICE TLS CA issued: what an attacker
// holding service-ca.key (the central node's run-time key) could make. It
// claims extendedKeyUsage codeSigning; every verifier must still refuse what
// it signs, because its issuing CA's extendedKeyUsage is serverAuth only.
import { createPrivateKey } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { issueCertificate, keyIdentifier, randomSerial } from '../../src/signing/issue.js';
import { generateKey } from '../../src/signing/keys.js';
import { buildName } from '../../src/signing/names.js';
import { derObjects, toPem } from '../../src/signing/pem.js';
import { parseCertificate } from '../../src/signing/x509.js';

export interface ForgedSigner {
  /** leaf + service CA, as `podboot sign --cert` takes it */
  chain: string;
  cert: string;
  key: string;
}

/** Writes NAME.{pem,key,chain.pem} into `outDir`: a leaf with EKU codeSigning issued by `caDir`'s service CA. */
export function forgeServiceCaSigner(caDir: string, outDir: string, name = 'forged'): ForgedSigner {
  const caDer = derObjects(readFileSync(join(caDir, 'service-ca.pem')), 'CERTIFICATE')[0]!;
  const ca = parseCertificate(caDer, 'service CA');
  const caKey = createPrivateKey(readFileSync(join(caDir, 'service-ca.key')));
  const key = generateKey();
  const now = Date.now();
  const der = issueCertificate({
    serial: randomSerial(),
    issuerName: ca.subject,
    subjectName: buildName({ organization: 'forged', commonName: name }),
    notBefore: new Date(now - 3_600_000),
    notAfter: new Date(now + 30 * 86_400_000),
    publicKey: key,
    issuerKey: caKey,
    issuerKeyId: keyIdentifier(caKey),
    profile: { kind: 'code-signing' },
  });
  const out = { cert: join(outDir, `${name}.pem`), key: join(outDir, `${name}.key`), chain: join(outDir, `${name}.chain.pem`) };
  writeFileSync(out.key, key.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  writeFileSync(out.cert, toPem('CERTIFICATE', der));
  writeFileSync(out.chain, toPem('CERTIFICATE', der) + toPem('CERTIFICATE', caDer));
  return out;
}
