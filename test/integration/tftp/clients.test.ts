// Real TFTP clients from Debian packages (tftp-hpa, curl, atftp) and the test
// client against the in-process server on 127.0.0.1.
import dgram from 'node:dgram';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodePacket } from '../../../src/tftp/codec.js';
import { tftpFetch } from '../../helpers/tftp-client.js';
import { acceptedLine, makeTree, patternBytes, runProcess, startTftp, type RunningTftp, type Tree } from '../../helpers/tftp-lab.js';

const MIB = 1024 * 1024;
/** Over 32 MiB: at blksize 512 the 16-bit block number wraps (65535 → 0) about 2,000 blocks before the end. */
const BIG = 33 * MIB + 123;

describe('TFTP with real clients', () => {
  let tree: Tree;
  let tftp: RunningTftp;
  const out = (name: string) => join(tree.dir, `got-${name}`);
  const expectSame = (file: string, name: string) => {
    const got = readFileSync(out(name));
    expect(got.length).toBe(tree.files.get(file)!.length);
    expect(got.equals(tree.files.get(file)!)).toBe(true);
    rmSync(out(name));
  };

  beforeAll(async () => {
    tree = makeTree({
      'small.bin': patternBytes(3000, 1),
      'm512.bin': patternBytes(512 * 8, 2), // a multiple of 512: ends with an empty block
      'm1468.bin': patternBytes(1468 * 3, 3),
      'empty.bin': Buffer.alloc(0),
      'stage1/mid.bin': patternBytes(5 * MIB + 17, 4),
      'big.bin': patternBytes(BIG, 5),
      'text.cfg': Buffer.from('DEFAULT local\nLABEL local\n  LOCALBOOT 0\r\n'),
    });
    tftp = await startTftp(tree.root);
  });
  afterAll(async () => {
    await tftp?.stop();
    tree?.cleanup();
  });

  it('decodes the read requests curl, tftp-hpa and atftp really send', async () => {
    const capture = async (run: (port: number) => Promise<unknown>) => {
      const s = dgram.createSocket('udp4');
      await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
      const first = new Promise<Buffer>((r) => s.once('message', (m) => r(m)));
      const client = run(s.address().port);
      const bytes = await first;
      s.close();
      await client;
      return decodePacket(bytes);
    };
    const curl = await capture((p) => runProcess('curl', ['-s', '--max-time', '2', '--tftp-blksize', '1468', '-o', '/dev/null', `tftp://127.0.0.1:${p}/pxelinux.0`]));
    // curl derives the timeout option from --max-time.
    expect(curl).toEqual({ ok: true, packet: { op: 'rrq', filename: 'pxelinux.0', mode: 'octet', options: { tsize: 0, blksize: 1468, timeout: 1 }, ignored: [] } });
    const hpa = await capture((p) => runProcess('timeout', ['2', 'tftp', '-m', 'binary', '127.0.0.1', String(p), '-c', 'get', 'a/b.0', '/dev/null']));
    expect(hpa).toEqual({ ok: true, packet: { op: 'rrq', filename: 'a/b.0', mode: 'octet', options: {}, ignored: [] } });
    const atftp = await capture((p) => runProcess('timeout', ['2', 'atftp', '--option', 'tsize enable', '--option', 'windowsize 16', '-g', '-r', 'x', '-l', '/dev/null', '127.0.0.1', String(p)]));
    expect(atftp.ok && atftp.packet.op === 'rrq' && atftp.packet.options).toEqual({ tsize: 0, windowsize: 16 });
  });

  it('tftp-hpa (RFC 1350, blksize 512, no options) fetches files byte-identical, including empty and 512-multiple ones', async () => {
    for (const f of ['small.bin', 'm512.bin', 'empty.bin', 'stage1/mid.bin']) {
      const r = await runProcess('tftp', ['-m', 'binary', '127.0.0.1', String(tftp.port), '-c', 'get', f, out('hpa')]);
      expect(r.stdout + r.stderr).not.toMatch(/Error|timed out/);
      expectSame(f, 'hpa');
      expect(acceptedLine(tftp.lines, f)).toMatchObject({ params: { blksize: 512, windowsize: 1 } });
    }
  });

  it('tftp-hpa in netascii mode gets the text back as it is on disk', async () => {
    const r = await runProcess('tftp', ['-m', 'netascii', '127.0.0.1', String(tftp.port), '-c', 'get', 'text.cfg', out('ascii')]);
    expect(r.code).toBe(0);
    expectSame('text.cfg', 'ascii');
  });

  it.each([512, 1468, 65464])('curl at blksize %i with tsize fetches byte-identical files', async (bs) => {
    for (const f of ['small.bin', 'm512.bin', 'm1468.bin', 'stage1/mid.bin']) {
      const r = await runProcess('curl', ['-sS', '--tftp-blksize', String(bs), '-o', out('curl'), `tftp://127.0.0.1:${tftp.port}/${f}`]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expectSame(f, 'curl');
      // curl asked for tsize and got the real size back in the OACK.
      expect(acceptedLine(tftp.lines, f)).toMatchObject({ options: { tsize: 0, blksize: bs }, params: { blksize: bs, oack: { blksize: bs, tsize: tree.files.get(f)!.length } } });
    }
  });

  it('a file over 32 MiB arrives byte-identical at blksize 512 (block number wrap) with tftp-hpa and curl', async () => {
    const hpa = await runProcess('tftp', ['-m', 'binary', '127.0.0.1', String(tftp.port), '-c', 'get', 'big.bin', out('big-hpa')], 110_000);
    expect(hpa.stdout + hpa.stderr).not.toMatch(/Error|timed out/);
    expectSame('big.bin', 'big-hpa');
    const curl = await runProcess('curl', ['-sS', '--tftp-blksize', '512', '-o', out('big-curl'), `tftp://127.0.0.1:${tftp.port}/big.bin`], 110_000);
    expect(curl.code).toBe(0);
    expectSame('big.bin', 'big-curl');
    const done = tftp.lines.filter((l) => l.msg === 'tftp transfer complete' && l.file === 'big.bin');
    expect(done).toHaveLength(2);
    expect(Math.ceil(BIG / 512)).toBeGreaterThan(65535);
  });

  it.each([1, 4, 16])('atftp (RFC 7440 client) at windowsize %i, blksize 1468, tsize', async (ws) => {
    const r = await runProcess('atftp', [
      '--option',
      `blksize 1468`,
      '--option',
      `windowsize ${ws}`,
      '--option',
      'tsize enable',
      '-g',
      '-r',
      'stage1/mid.bin',
      '-l',
      out('atftp'),
      '127.0.0.1',
      String(tftp.port),
    ]);
    expect(r.code).toBe(0);
    expectSame('stage1/mid.bin', 'atftp');
    expect(acceptedLine(tftp.lines, 'stage1/mid.bin')).toMatchObject({ params: { windowsize: ws, oack: { windowsize: ws, blksize: 1468, tsize: tree.files.get('stage1/mid.bin')!.length } } });
  });

  it.each([1, 4, 16])('the test client at windowsize %i gets every block exactly once on a clean link', async (ws) => {
    const file = tree.files.get('stage1/mid.bin')!;
    const r = await tftpFetch({ port: tftp.port, file: 'stage1/mid.bin', options: { blksize: 1468, windowsize: ws, tsize: 0 } });
    expect(r.ok).toBe(true);
    expect(r.oack).toEqual({ blksize: '1468', windowsize: String(ws), tsize: String(file.length) });
    expect(r.data.equals(file)).toBe(true);
    expect(r.dataPackets).toBe(Math.floor(file.length / 1468) + 1);
    // One ACK per window (plus ACK 0 for the OACK).
    expect(r.acksSent).toBe(Math.ceil(r.dataPackets / ws) + 1);
  });

  it('counts what it served', async () => {
    await new Promise((r) => setTimeout(r, 200)); // the last final ACK may still be in flight
    const c = tftp.server.counters;
    expect(c.completed).toBeGreaterThan(20);
    expect(c.bytesSent).toBeGreaterThan(2 * BIG);
    expect(c.active).toBe(0);
  });
});
