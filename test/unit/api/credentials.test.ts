import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { afterAll, describe, expect, it } from 'vitest';
import { centralCredentials, nodeCa, operatorToken, tokenMatches } from '../../../src/api/credentials.js';
import { CaDirectory } from '../../../src/signing/index.js';
import { makeLegacyCa } from '../../helpers/legacy-ca.js';
import { captureLogger } from '../../helpers/logs.js';

const dir = mkdtempSync(join(tmpdir(), 'pbv-cred-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Serves the credentials on loopback and connects trusting only `caFile`; resolves the peer's subject CN. */
async function handshake(creds: { key: string; cert: string }, caFile: string): Promise<{ authorized: boolean; protocol: string | null }> {
  const server = createServer({ key: creds.key, cert: creds.cert, minVersion: 'TLSv1.2' });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  try {
    return await new Promise((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port, ca: readFileSync(caFile) }, () => {
        resolve({ authorized: s.authorized, protocol: s.getProtocol() });
        s.end();
      });
      s.on('error', reject);
    });
  } finally {
    server.close();
  }
}

describe('central API credentials', () => {
  it('with the operator CA: a server certificate for the API address that clients of that root accept, reissued only when the address changes', async () => {
    const { log, lines } = captureLogger({ node: 'central' });
    await CaDirectory.init(join(dir, 'op-ca'));
    const { ca, selfIssued } = await nodeCa(join(dir, 'state'), join(dir, 'op-ca'), log);
    expect(selfIssued).toBe(false);
    const c1 = await centralCredentials({ ca, selfIssued, ip: ['127.0.0.1'], log });
    expect(c1.caFile).toBe(join(dir, 'op-ca', 'root.pem'));
    expect(await handshake(c1, c1.caFile)).toEqual({ authorized: true, protocol: expect.stringMatching(/^TLSv1\.[23]$/) });
    const again = await centralCredentials({ ca, selfIssued, ip: ['127.0.0.1'], log });
    expect(again.cert).toBe(c1.cert);
    const firstSerial = JSON.parse(readFileSync(join(dir, 'op-ca', 'servers', 'central.names.json'), 'utf8')).serial;
    const moved = await centralCredentials({ ca, selfIssued, ip: ['127.0.0.2'], log });
    expect(moved.cert).not.toBe(c1.cert);
    // The superseded certificate is revoked (on the service TLS CA's CRL), not left valid beside the new one.
    const state = JSON.parse(readFileSync(join(dir, 'op-ca', 'ca.json'), 'utf8')) as { revoked: { service: { serial: string; reason?: string }[] } };
    expect(state.revoked.service).toContainEqual(expect.objectContaining({ serial: firstSerial, reason: 'superseded' }));
    expect(lines.some((l) => String(l.msg).includes('self-issued'))).toBe(false);
  });

  it('without one: a local CA in STATE/ca, logged as self-issued; a named CA directory that is not one is an error', async () => {
    const { log, lines } = captureLogger({ node: 'central' });
    const { ca, selfIssued } = await nodeCa(join(dir, 'state2'), undefined, log);
    expect(selfIssued).toBe(true);
    expect(ca.dir).toBe(join(dir, 'state2', 'ca'));
    const c = await centralCredentials({ ca, selfIssued, ip: ['127.0.0.1'], log });
    expect(await handshake(c, c.caFile)).toMatchObject({ authorized: true });
    expect(lines.map((l) => l.msg)).toEqual(
      expect.arrayContaining(['no --ca given: creating a local CA for this node', 'central API certificate is self-issued (no --ca given): clients must trust this root explicitly']),
    );
    await expect(nodeCa(join(dir, 'state3'), join(dir, 'nothing-here'), log)).rejects.toThrow(/not a CA directory/);
  });

  it("a local CA of the old layout (one signing CA) is migrated at start; an operator's is left for podboot ca migrate", async () => {
    const { log, lines } = captureLogger({ node: 'central' });
    makeLegacyCa(join(dir, 'state4', 'ca'));
    const { ca, selfIssued } = await nodeCa(join(dir, 'state4'), undefined, log);
    expect(selfIssued).toBe(true);
    expect(existsSync(ca.paths.serviceCaCert)).toBe(true);
    expect(lines.some((l) => l.msg === 'migrated the local CA to the code-signing CA + service CA layout')).toBe(true);
    // the server certificate the node now issues comes from the service CA
    const c = await centralCredentials({ ca, selfIssued, ip: ['127.0.0.1'], log });
    expect(ca.isFromServiceCa(c.cert)).toBe(true);
    makeLegacyCa(join(dir, 'op-legacy'));
    await expect(nodeCa(join(dir, 'state5'), join(dir, 'op-legacy'), log)).rejects.toThrow(/podboot ca migrate/);
  });

  it('operator token: created once with mode 0600, read back, too short refused; compared in constant time', async () => {
    const file = join(dir, 'tok', 'operator.token');
    const t = await operatorToken(file, true);
    expect(t).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(await operatorToken(file, true)).toBe(t);
    writeFileSync(join(dir, 'short'), 'abc\n');
    await expect(operatorToken(join(dir, 'short'), false)).rejects.toThrow(/at least 16/);
    await expect(operatorToken(join(dir, 'missing'), false)).rejects.toThrow(/no such token file/);
    expect(tokenMatches(t, t)).toBe(true);
    expect(tokenMatches(t, `${t}x`)).toBe(false);
    expect(tokenMatches(t, undefined)).toBe(false);
  });
});
