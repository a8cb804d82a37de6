// A CA directory as podboot wrote it before the split into a code-signing CA
// and a service TLS CA (format podboot-ca/1): root → ONE signing CA (no
// extendedKeyUsage) that issued signers/ci and servers/rack-a, crl.pem and
// root-crl.pem, with the same names, profiles and ca.json `ca init`,
// `ca issue-signer` and `ca issue-server` produced. Input for migration tests.
import type { KeyObject } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { issueCertificate, issueCrl, keyIdentifier, randomSerial, type CertificateProfile } from '../../src/signing/issue.js';
import { generateKey } from '../../src/signing/keys.js';
import { buildName } from '../../src/signing/names.js';
import { toPem } from '../../src/signing/pem.js';
import { parseCertificate, type Certificate } from '../../src/signing/x509.js';

const DAY = 86_400_000;

export interface LegacyCa {
  dir: string;
  signingCaSerial: string;
  signer: { serial: string; chain: string; key: string };
  server: { serial: string; chain: string; key: string };
}

const keyPem = (k: KeyObject) => k.export({ type: 'pkcs8', format: 'pem' }) as string;

export function makeLegacyCa(dir: string, organization = 'Legacy', now = new Date()): LegacyCa {
  mkdirSync(dir, { recursive: true });
  const from = new Date(now.getTime() - 3_600_000);
  const issue = (subject: Buffer, issuer: { cert?: Certificate; key: KeyObject }, key: KeyObject, profile: CertificateProfile, days: number) => {
    const der = issueCertificate({
      serial: randomSerial(),
      issuerName: issuer.cert ? issuer.cert.subject : subject,
      subjectName: subject,
      notBefore: from,
      notAfter: new Date(now.getTime() + days * DAY),
      publicKey: key,
      issuerKey: issuer.key,
      ...(issuer.cert ? { issuerKeyId: keyIdentifier(issuer.key) } : {}),
      profile,
    });
    return { der, cert: parseCertificate(der, 'legacy certificate'), key };
  };
  const name = (cn: string) => buildName({ organization, commonName: cn });
  const rootKey = generateKey();
  const root = issue(name(`${organization} podboot root CA`), { key: rootKey }, rootKey, { kind: 'ca', pathLen: 1 }, 7300);
  const signing = issue(name(`${organization} podboot signing CA`), { cert: root.cert, key: rootKey }, generateKey(), { kind: 'ca', pathLen: 0 }, 3650);
  const signer = issue(name('ci'), signing, generateKey(), { kind: 'code-signing' }, 365);
  const server = issue(name('rack-a'), signing, generateKey(), { kind: 'tls-server', dns: ['rack-a'], ip: ['127.0.0.1'] }, 365);

  const w = (file: string, data: string, mode = 0o644) => writeFileSync(join(dir, file), data, { mode });
  w('root.pem', toPem('CERTIFICATE', root.der));
  w('root.key', keyPem(rootKey), 0o600);
  w('signing-ca.pem', toPem('CERTIFICATE', signing.der));
  w('signing-ca.key', keyPem(signing.key), 0o600);
  mkdirSync(join(dir, 'signers'));
  mkdirSync(join(dir, 'servers'));
  for (const [sub, leaf, n] of [
    ['signers', signer, 'ci'],
    ['servers', server, 'rack-a'],
  ] as const) {
    w(`${sub}/${n}.pem`, toPem('CERTIFICATE', leaf.der));
    w(`${sub}/${n}.chain.pem`, toPem('CERTIFICATE', leaf.der) + toPem('CERTIFICATE', signing.der));
    w(`${sub}/${n}.key`, keyPem(leaf.key), 0o600);
  }
  const crl = (issuer: typeof root) =>
    toPem(
      'X509 CRL',
      issueCrl({
        issuerName: issuer.cert.subject,
        issuerKey: issuer.key,
        issuerKeyId: keyIdentifier(issuer.key),
        thisUpdate: from,
        nextUpdate: new Date(now.getTime() + 30 * DAY),
        number: 1n,
        revoked: [],
      }),
    );
  w('crl.pem', crl(signing));
  w('root-crl.pem', crl(root));
  const rec = (kind: string, c: Certificate) => ({ serial: c.serialHex, kind, subject: c.subjectText, notAfter: c.notAfter.toISOString() });
  const state = {
    format: 'podboot-ca/1',
    organization,
    crlDays: 30,
    crlNumber: { root: 1, signingCa: 1 },
    issued: [rec('signing-ca', signing.cert), rec('signer', signer.cert), rec('server', server.cert)],
    revoked: [],
    rootRevoked: [],
  };
  w('ca.json', JSON.stringify(state, null, 2) + '\n');
  return {
    dir,
    signingCaSerial: signing.cert.serialHex,
    signer: { serial: signer.cert.serialHex, chain: join(dir, 'signers', 'ci.chain.pem'), key: join(dir, 'signers', 'ci.key') },
    server: { serial: server.cert.serialHex, chain: join(dir, 'servers', 'rack-a.chain.pem'), key: join(dir, 'servers', 'rack-a.key') },
  };
}
