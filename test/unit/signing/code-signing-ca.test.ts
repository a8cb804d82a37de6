// Only the code-signing CA may vouch for a signer. An attacker holding the
// service TLS CA's key (the one key the central node keeps at run time) can
// mint a leaf that claims codeSigning; podboot verify, the catalog (through
// the same verifier) and stage1's verify.sh must all refuse what it signs.
// OpenSSL alone does not: its 3.0 CLI has no code-signing purpose, and
// `-purpose any` checks no issuer's extendedKeyUsage; shown here against the
// real binary, which is why verify.sh checks the issuing CA itself.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { forgeServiceCaSigner, type ForgedSigner } from '../../helpers/forged-signer.js';
import { makeLegacyCa } from '../../helpers/legacy-ca.js';
import { PODBOOT, requireBuild } from '../../helpers/netns.js';

const VERIFY_SH = new URL('../../../images/stage1/verify.sh', import.meta.url).pathname;
let dir: string;
let ca: string;
let forged: ForgedSigner;

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

/** `podboot sign` with CHAIN and KEY; returns the image path. */
function signed(name: string, chain: string, key: string): string {
  const img = join(dir, name);
  writeFileSync(img, randomBytes(8192));
  ok(podboot('sign', img, '--cert', chain, '--key', key, '--name', 'stage2', '--version', '1.0'));
  return img;
}

/** stage1's verify.sh on a signed image laid out as the agent downloads it. */
function stage1Verify(img: string, rootCa: string) {
  const d = join(dir, `${img.split('/').pop()}.stage1`);
  mkdirSync(d, { recursive: true });
  for (const [from, to] of [
    ['', 'image'],
    ['.p7s', 'image.p7s'],
    ['.manifest.json', 'manifest.json'],
    ['.manifest.json.p7s', 'manifest.json.p7s'],
  ] as const)
    copyFileSync(`${img}${from}`, join(d, to));
  return run('sh', [VERIFY_SH, 'image', d, rootCa, 'rack-a']);
}

beforeAll(() => {
  requireBuild();
  dir = mkdtempSync(join(tmpdir(), 'podboot-codesign-ca-'));
  ca = join(dir, 'ca');
  ok(podboot('ca', 'init', '--out', ca, '--org', 'Two CAs'));
  ok(podboot('ca', 'issue-signer', 'ci', '--ca', ca));
  forged = forgeServiceCaSigner(ca, dir);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('a stage2 signed through the service TLS CA', () => {
  it('is refused by podboot verify, naming the service CA; the same image from the code-signing CA passes', () => {
    expect(ok(openssl('x509', '-in', forged.cert, '-noout', '-ext', 'extendedKeyUsage')).out).toMatch(/Code Signing/);
    const bad = signed('forged.img', forged.chain, forged.key);
    const r = podboot('verify', bad, '--ca', `${ca}/root.pem`);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(
      /REFUSED \[eku\] .*issuing CA certificate \(O=Two CAs, CN=Two CAs podboot service TLS CA, serial [0-9a-f]+\) is not a code-signing CA: its extendedKeyUsage \(serverAuth\) excludes codeSigning/,
    );
    const good = signed('good.img', `${ca}/signers/ci.chain.pem`, `${ca}/signers/ci.key`);
    ok(podboot('verify', good, '--ca', `${ca}/root.pem`, '--crl', `${ca}/codesign-crl.pem`, '--crl', `${ca}/root-crl.pem`));
  });

  it('passes openssl cms -verify -purpose any (OpenSSL 3.0 checks no issuer EKU for code signing), so stage1 checks the issuer itself', () => {
    const bad = signed('forged-openssl.img', forged.chain, forged.key);
    expect(ok(openssl('cms', '-verify', '-binary', '-inform', 'DER', '-in', `${bad}.p7s`, '-content', bad, '-CAfile', `${ca}/root.pem`, '-purpose', 'any', '-out', '/dev/null')).err).toMatch(
      /Verification successful/,
    );
    // For the purposes it knows OpenSSL does chain EKUs: a TLS server certificate under the code-signing CA is refused.
    writeFileSync(join(dir, 'ext.cnf'), 'extendedKeyUsage=serverAuth\nbasicConstraints=critical,CA:FALSE\n');
    ok(openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'tls.key', '-subj', '/CN=tls', '-out', 'tls.csr'));
    ok(openssl('x509', '-req', '-in', 'tls.csr', '-CA', `${ca}/codesign-ca.pem`, '-CAkey', `${ca}/codesign-ca.key`, '-CAcreateserial', '-days', '3', '-extfile', 'ext.cnf', '-out', 'tls.pem'));
    const v = openssl('verify', '-purpose', 'sslserver', '-CAfile', `${ca}/root.pem`, '-untrusted', `${ca}/codesign-ca.pem`, 'tls.pem');
    expect(v.code).not.toBe(0);
    expect(v.all).toMatch(/error 26 at 1 depth lookup: unsuitable certificate purpose/);
  });

  it("is refused by stage1's verify.sh, which accepts the code-signing CA's", () => {
    const r = stage1Verify(signed('forged-stage1.img', forged.chain, forged.key), `${ca}/root.pem`);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(
      /^signature: manifest\.json\.p7s: signer issued by subject=O = Two CAs, CN = Two CAs podboot service TLS CA, which is not the code-signing CA \(its extended key usage: TLS Web Server Authentication\)$/m,
    );
    expect(ok(stage1Verify(signed('good-stage1.img', `${ca}/signers/ci.chain.pem`, `${ca}/signers/ci.key`), `${ca}/root.pem`)).out).toBe('ok: stage2 1.0\n');
  });

  it('is refused even when the signature also carries a copy of the service CA claiming codeSigning', () => {
    // Self-issued with the service CA's key and name: its key signed the leaf, but the root never issued it.
    ok(
      openssl(
        'req',
        '-new',
        '-x509',
        '-key',
        `${ca}/service-ca.key`,
        '-subj',
        '/O=Two CAs/CN=Two CAs podboot service TLS CA',
        '-days',
        '3',
        '-addext',
        'basicConstraints=critical,CA:TRUE',
        '-addext',
        'keyUsage=critical,keyCertSign,cRLSign',
        '-addext',
        'extendedKeyUsage=codeSigning',
        '-out',
        'copy.pem',
      ),
    );
    writeFileSync(join(dir, 'extra.pem'), readFileSync(`${ca}/service-ca.pem`, 'utf8') + readFileSync(join(dir, 'copy.pem'), 'utf8'));
    const img = join(dir, 'copy.img');
    writeFileSync(img, randomBytes(4096));
    ok(podboot('sign', img, '--cert', forged.chain, '--key', forged.key, '--name', 'stage2', '--version', '1.0'));
    // re-sign both files with openssl to carry the extra certificate
    for (const f of [img, `${img}.manifest.json`])
      ok(openssl('cms', '-sign', '-binary', '-outform', 'DER', '-in', f, '-out', `${f}.p7s`, '-signer', forged.cert, '-inkey', forged.key, '-certfile', 'extra.pem'));
    const s = stage1Verify(img, `${ca}/root.pem`);
    expect(s.code).toBe(1);
    expect(s.out).toMatch(/^signature: manifest\.json\.p7s: signer issued by .*service TLS CA, which is not the code-signing CA/m);
    const p = podboot('verify', img, '--ca', `${ca}/root.pem`);
    expect(p.code).toBe(1);
    expect(p.err).toMatch(/REFUSED \[(eku|ca)\]/);
  });
});

describe('ca migrate (CLI)', () => {
  it('migrates an old directory once, then changes nothing; stage1 and podboot verify still accept images signed before it', () => {
    const legacy = makeLegacyCa(join(dir, 'old-ca'), 'Old');
    const img = signed('before-migration.img', legacy.signer.chain, legacy.signer.key);
    expect(podboot('ca', 'issue-signer', 'x', '--ca', legacy.dir).err).toMatch(/old layout .*run podboot ca migrate --dir/);
    const first = ok(podboot('ca', 'migrate', '--dir', legacy.dir)).out;
    expect(first).toMatch(/issued the service TLS CA/);
    expect(first).toMatch(/now move .*codesign-ca\.key and .*root\.key off the central node/);
    expect(ok(podboot('ca', 'migrate', '--dir', legacy.dir)).out).toMatch(/already in the current layout; nothing changed/);
    ok(podboot('verify', img, '--ca', `${legacy.dir}/root.pem`, '--crl', `${legacy.dir}/codesign-crl.pem`, '--crl', `${legacy.dir}/root-crl.pem`));
    expect(ok(stage1Verify(img, `${legacy.dir}/root.pem`)).out).toBe('ok: stage2 1.0\n');
    ok(podboot('ca', 'issue-server', 'rack-a', '--ca', legacy.dir, '--ip', '127.0.0.1'));
    expect(ok(openssl('x509', '-in', `${legacy.dir}/servers/rack-a.pem`, '-noout', '-issuer')).out).toMatch(/CN = Old podboot service TLS CA/);
    // the migrated service CA's signers are refused like a fresh one's
    const bad = signed('migrated-forged.img', forgeServiceCaSigner(legacy.dir, dir, 'forged-old').chain, join(dir, 'forged-old.key'));
    expect(podboot('verify', bad, '--ca', `${legacy.dir}/root.pem`).err).toMatch(/REFUSED \[eku\].*Old podboot service TLS CA/);
    expect(stage1Verify(bad, `${legacy.dir}/root.pem`).out).toMatch(/^signature: .*not the code-signing CA/m);
    expect(podboot('ca', 'migrate').code).toBe(2);
  });
});
