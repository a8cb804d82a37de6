// podboot's CA, signer and verifier against the real openssl binary, both ways,
// through the built CLI (npm test builds first).
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PODBOOT, requireBuild } from '../../helpers/netns.js';

let dir: string;
let ca: string;
let signerSerial: string;

function run(cmd: string, args: string[]) {
  const r = spawnSync(cmd, args, { cwd: dir, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, out: r.stdout, err: r.stderr, all: r.stdout + r.stderr };
}
const podboot = (...args: string[]) => run(process.execPath, [PODBOOT, ...args]);
const openssl = (...args: string[]) => run('openssl', args);

function ok(r: ReturnType<typeof run>) {
  expect(r.code, r.all).toBe(0);
  return r;
}

/** A fresh copy of the test image under `name`, so signatures of one test never mix with another's. */
function image(name: string): string {
  copyFileSync(join(dir, 'base.img'), join(dir, name));
  return name;
}

const opensslVerify = (img: string, sig = `${img}.p7s`) =>
  openssl('cms', '-verify', '-binary', '-inform', 'DER', '-in', sig, '-content', img, '-CAfile', `${ca}/root.pem`, '-purpose', 'any', '-out', '/dev/null');

beforeAll(() => {
  requireBuild();
  dir = mkdtempSync(join(tmpdir(), 'podboot-interop-'));
  ca = join(dir, 'ca');
  writeFileSync(join(dir, 'base.img'), randomBytes(1 << 20));
  ok(podboot('ca', 'init', '--out', ca, '--org', 'Interop Test'));
  const issued = ok(podboot('ca', 'issue-signer', 'ci', '--ca', ca));
  signerSerial = issued.out.match(/serial ([0-9a-f]+)/)![1]!;
  ok(podboot('ca', 'issue-server', 'rack-a', '--ca', ca, '--ip', '127.0.0.1', '--ip', 'fd00::1'));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the CA directory, as openssl sees it', () => {
  it('keeps every private key mode 0600', () => {
    for (const k of ['root.key', 'codesign-ca.key', 'service-ca.key', 'signers/ci.key', 'servers/rack-a.key']) expect(statSync(join(ca, k)).mode & 0o777, k).toBe(0o600);
  });

  it('is a root → {code-signing CA, service TLS CA} → leaf hierarchy with the right extensions', () => {
    const root = ok(openssl('x509', '-in', `${ca}/root.pem`, '-noout', '-text')).out;
    expect(root).toMatch(/CA:TRUE, pathlen:1/);
    expect(root).toMatch(/Certificate Sign, CRL Sign/);
    expect(root).toMatch(/ASN1 OID: prime256v1/);
    const codesign = ok(openssl('x509', '-in', `${ca}/codesign-ca.pem`, '-noout', '-text')).out;
    expect(codesign).toMatch(/Subject: O = Interop Test, CN = Interop Test podboot code-signing CA/);
    expect(codesign).toMatch(/CA:TRUE, pathlen:0/);
    expect(codesign).toMatch(/Extended Key Usage: *\n *Code Signing\n/);
    const service = ok(openssl('x509', '-in', `${ca}/service-ca.pem`, '-noout', '-text')).out;
    expect(service).toMatch(/Subject: O = Interop Test, CN = Interop Test podboot service TLS CA/);
    expect(service).toMatch(/CA:TRUE, pathlen:0/);
    expect(service).toMatch(/Extended Key Usage: *\n *TLS Web Server Authentication\n/);
    const signer = ok(openssl('x509', '-in', `${ca}/signers/ci.pem`, '-noout', '-text')).out;
    expect(signer).toMatch(/CA:FALSE/);
    expect(signer).toMatch(/Code Signing/);
    expect(signer).toMatch(/Subject: O = Interop Test, CN = ci/);
    const server = ok(openssl('x509', '-in', `${ca}/servers/rack-a.pem`, '-noout', '-text')).out;
    expect(server).toMatch(/TLS Web Server Authentication/);
    expect(server).toMatch(/DNS:rack-a, IP Address:127\.0\.0\.1, IP Address:FD00:0:0:0:0:0:0:1/);
    expect(ok(openssl('verify', '-CAfile', `${ca}/root.pem`, '-untrusted', `${ca}/codesign-ca.pem`, `${ca}/signers/ci.pem`)).out).toMatch(/OK/);
    expect(ok(openssl('verify', '-purpose', 'sslserver', '-CAfile', `${ca}/root.pem`, '-untrusted', `${ca}/service-ca.pem`, `${ca}/servers/rack-a.pem`)).out).toMatch(/OK/);
    expect(ok(openssl('x509', '-in', `${ca}/servers/rack-a.pem`, '-noout', '-issuer')).out).toMatch(/service TLS CA/);
  });

  it('issues CRLs whose signatures openssl accepts, one per CA', () => {
    for (const which of ['codesign', 'service']) {
      writeFileSync(join(dir, 'chain.pem'), readFileSync(`${ca}/${which}-ca.pem`, 'utf8') + readFileSync(`${ca}/root.pem`, 'utf8'));
      expect(ok(openssl('crl', '-in', `${ca}/${which}-crl.pem`, '-CAfile', 'chain.pem', '-noout')).all, which).toMatch(/verify OK/);
      expect(ok(openssl('crl', '-in', `${ca}/${which}-crl.pem`, '-noout', '-issuer')).out).toMatch(which === 'codesign' ? /code-signing CA/ : /service TLS CA/);
    }
    expect(ok(openssl('crl', '-in', `${ca}/root-crl.pem`, '-CAfile', `${ca}/root.pem`, '-noout')).all).toMatch(/verify OK/);
  });
});

describe('podboot sign → openssl cms -verify', () => {
  it('verifies the image and the manifest signatures (issuerAndSerialNumber)', () => {
    const img = image('a.img');
    ok(podboot('sign', img, '--cert', `${ca}/signers/ci.chain.pem`, '--key', `${ca}/signers/ci.key`, '--version', '1.0', '--pods', 'rack-a'));
    expect(ok(opensslVerify(img)).all).toMatch(/Verification successful/);
    expect(ok(opensslVerify(`${img}.manifest.json`)).all).toMatch(/Verification successful/);
    const printed = ok(openssl('cms', '-cmsout', '-print', '-inform', 'DER', '-in', `${img}.p7s`)).out;
    expect(printed).toMatch(/d\.issuerAndSerialNumber/);
    expect(printed).toMatch(/object: signingTime/);
    expect(printed).toMatch(/eContent: <ABSENT>/);
  });

  it('verifies a signature naming the signer by subjectKeyIdentifier (--keyid)', () => {
    const img = image('b.img');
    ok(podboot('sign', img, '--cert', `${ca}/signers/ci.chain.pem`, '--key', `${ca}/signers/ci.key`, '--version', '1.0', '--keyid'));
    expect(ok(opensslVerify(img)).all).toMatch(/Verification successful/);
    expect(ok(openssl('cms', '-cmsout', '-print', '-inform', 'DER', '-in', `${img}.p7s`)).out).toMatch(/d\.subjectKeyIdentifier/);
  });

  it('both refuse the image with one flipped byte', () => {
    const img = image('c.img');
    ok(podboot('sign', img, '--cert', `${ca}/signers/ci.chain.pem`, '--key', `${ca}/signers/ci.key`, '--version', '1.0'));
    const bytes = readFileSync(join(dir, img));
    bytes[777]! ^= 0x80;
    writeFileSync(join(dir, img), bytes);
    const ov = opensslVerify(img);
    expect(ov.code).not.toBe(0);
    expect(ov.all).toMatch(/content verify error/);
    const r = podboot('verify', img, '--ca', `${ca}/root.pem`);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/REFUSED \[digest\]/);
  });
});

describe('openssl cms -sign → podboot verify', () => {
  const opensslSign = (img: string, ...extra: string[]) =>
    ok(openssl('cms', '-sign', '-binary', '-outform', 'DER', '-in', img, '-out', `${img}.p7s`, '-signer', `${ca}/signers/ci.pem`, '-inkey', `${ca}/signers/ci.key`, ...extra));

  it('accepts issuerAndSerialNumber and subjectKeyIdentifier signer identifiers', () => {
    for (const [img, keyid] of [
      ['d.img', []],
      ['e.img', ['-keyid']],
    ] as const) {
      image(img);
      opensslSign(img, '-certfile', `${ca}/codesign-ca.pem`, ...keyid);
      const r = ok(podboot('verify', img, '--ca', `${ca}/root.pem`, '--crl', `${ca}/codesign-crl.pem`, '--crl', `${ca}/root-crl.pem`));
      expect(r.out).toMatch(new RegExp(`signer +O=Interop Test, CN=ci \\(serial ${signerSerial}`));
      expect(r.out).toMatch(/revocation +checked/);
    }
  });

  it('accepts an RSA 3072 signer that openssl issued under the podboot code-signing CA', () => {
    ok(openssl('genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:3072', '-out', 'rsa.key'));
    ok(openssl('req', '-new', '-key', 'rsa.key', '-subj', '/O=Interop Test/CN=rsa-ci', '-out', 'rsa.csr'));
    writeFileSync(join(dir, 'ext.cnf'), 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=codeSigning\nsubjectKeyIdentifier=hash\n');
    ok(openssl('x509', '-req', '-in', 'rsa.csr', '-CA', `${ca}/codesign-ca.pem`, '-CAkey', `${ca}/codesign-ca.key`, '-CAcreateserial', '-days', '30', '-extfile', 'ext.cnf', '-out', 'rsa.pem'));
    const img = image('f.img');
    ok(openssl('cms', '-sign', '-binary', '-outform', 'DER', '-in', img, '-out', `${img}.p7s`, '-signer', 'rsa.pem', '-inkey', 'rsa.key', '-certfile', `${ca}/codesign-ca.pem`));
    expect(ok(podboot('verify', img, '--ca', `${ca}/root.pem`)).out).toMatch(/signer +O=Interop Test, CN=rsa-ci/);
  });

  it('refuses a signature without the signing CA, without signed attributes, or with embedded content', () => {
    // Small, so that the -nodetach signature (which embeds the image) stays under the size cap.
    writeFileSync(join(dir, 'g.img'), randomBytes(4096));
    const img = 'g.img';
    const cases: [string[], RegExp][] = [
      [[], /REFUSED \[chain\].*must carry the issuing CA certificate/],
      [['-certfile', `${ca}/codesign-ca.pem`, '-noattr'], /REFUSED \[unsupported\].*no signed attributes/],
      [['-certfile', `${ca}/codesign-ca.pem`, '-nodetach'], /REFUSED \[unsupported\].*embeds its content/],
    ];
    for (const [extra, message] of cases) {
      opensslSign(img, ...extra);
      const r = podboot('verify', img, '--ca', `${ca}/root.pem`);
      expect(r.code, r.all).toBe(1);
      expect(r.err).toMatch(message);
    }
  });

  it('refuses a signed content type other than data', () => {
    const img = image('h.img');
    opensslSign(img, '-certfile', `${ca}/codesign-ca.pem`, '-econtent_type', '1.2.3.4');
    const r = podboot('verify', img, '--ca', `${ca}/root.pem`);
    expect(r.err).toMatch(/REFUSED \[content-type\].*1\.2\.3\.4/);
  });
});

describe('revocation and the CLI contract', () => {
  it('ca revoke puts the serial on a CRL that openssl and podboot both honour', () => {
    const serial = ok(podboot('ca', 'issue-signer', 'leaving', '--ca', ca)).out.match(/serial ([0-9a-f]+)/)![1]!;
    const img = image('i.img');
    ok(podboot('sign', img, '--cert', `${ca}/signers/leaving.chain.pem`, '--key', `${ca}/signers/leaving.key`, '--version', '1'));
    ok(podboot('verify', img, '--ca', `${ca}/root.pem`, '--crl', `${ca}/codesign-crl.pem`));
    expect(ok(podboot('ca', 'revoke', serial, '--ca', ca, '--reason', 'keyCompromise')).out).toMatch(/CRL re-issued/);
    expect(ok(openssl('crl', '-in', `${ca}/codesign-crl.pem`, '-noout', '-text')).out).toMatch(new RegExp(`Serial Number: ${serial.toUpperCase()}[\\s\\S]*Key Compromise`));
    const ov = openssl('verify', '-crl_check', '-CRLfile', `${ca}/codesign-crl.pem`, '-CAfile', `${ca}/root.pem`, '-untrusted', `${ca}/codesign-ca.pem`, `${ca}/signers/leaving.pem`);
    expect(ov.all).toMatch(/certificate revoked/);
    const r = podboot('verify', img, '--ca', `${ca}/root.pem`, '--crl', `${ca}/codesign-crl.pem`);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/REFUSED \[revoked\].*CN=leaving.*\(keyCompromise\)/);
    expect(podboot('ca', 'revoke', serial, '--ca', ca).err).toMatch(/already revoked/);
  });

  it('checks validity at --at, and exits 2 on wrong usage', () => {
    const img = image('j.img');
    ok(podboot('sign', img, '--cert', `${ca}/signers/ci.chain.pem`, '--key', `${ca}/signers/ci.key`, '--version', '1'));
    expect(podboot('verify', img, '--ca', `${ca}/root.pem`, '--at', '2001-01-01T00:00:00Z').err).toMatch(/REFUSED \[not-yet-valid\]/);
    const json = JSON.parse(podboot('verify', img, '--ca', `${ca}/root.pem`, '--at', '2099-01-01T00:00:00Z', '--json').out) as { ok: boolean; check: string };
    expect(json).toMatchObject({ ok: false, check: 'expired' });
    expect(podboot('verify', img).code).toBe(2);
    expect(podboot('sign', img, '--cert', 'x').code).toBe(2);
    expect(podboot('verify', img, '--bogus').code).toBe(2);
  });

  it('refuses a signing key that others can read, and never prints key material', () => {
    const key = join(dir, 'loose.key');
    copyFileSync(`${ca}/signers/ci.key`, key);
    chmodSync(key, 0o644);
    const img = image('k.img');
    const r = podboot('sign', img, '--cert', `${ca}/signers/ci.chain.pem`, '--key', key, '--version', '1');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/readable by group or others \(mode 644\); run chmod 600/);
    const secret = readFileSync(key, 'utf8').split('\n')[1]!;
    expect(r.all).not.toContain(secret);
    const good = ok(podboot('sign', img, '--cert', `${ca}/signers/ci.chain.pem`, '--key', `${ca}/signers/ci.key`, '--version', '1'));
    expect(good.all).not.toContain(readFileSync(`${ca}/signers/ci.key`, 'utf8').split('\n')[1]!);
  });
});
