// Verifying a signed 1 GiB image (chain + CMS + streamed digest + manifest)
// against `openssl dgst -sha256` of the same file (the hash limit) and
// `openssl cms -verify`, alternating A B C D each round, file in the page cache.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Bench } from './bench.js';
import { median, table, writeRandomFile, PODBOOT_CLI } from './lib.js';
import { CaDirectory, readPrivateKey, signImage, signerIdentity, verifyImage } from '../src/signing/index.js';

function flag(flags: string[], name: string, dflt: number): number {
  const f = flags.find((x) => x.startsWith(`--${name}=`));
  return f ? Number(f.split('=')[1]) : dflt;
}

function timed(argv: string[]): number {
  const t = process.hrtime.bigint();
  const r = spawnSync(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], timeout: 300_000 });
  const s = Number(process.hrtime.bigint() - t) / 1e9;
  if (r.status !== 0) throw new Error(`${argv.join(' ')} failed (${r.status}): ${r.stderr?.toString().slice(-500)}`);
  return s;
}

export const verifyBench: Bench = {
  name: 'verify',
  summary: 'verify a signed 1 GiB image: podboot vs openssl dgst -sha256 and openssl cms -verify (--size-mib=N --rounds=N)',
  async run(flags) {
    const sizeMiB = flag(flags, 'size-mib', 1024);
    const rounds = Math.max(3, flag(flags, 'rounds', 3));
    const bytes = sizeMiB * 1024 * 1024;
    const dir = mkdtempSync(join(tmpdir(), 'podboot-bench-verify-'));
    try {
      const ca = await CaDirectory.init(join(dir, 'ca'), { organization: 'bench' });
      const issued = await ca.issueSigner('ci');
      const image = join(dir, 'stage2.img');
      process.stdout.write(`writing ${sizeMiB} MiB of random data to ${image}\n`);
      writeRandomFile(image, bytes);
      const signer = signerIdentity(readFileSync(issued.chain), await readPrivateKey(issued.key));
      await signImage({ image, signer, name: 'stage2', version: '1' });
      const root = ca.paths.rootCert;
      const inputs = {
        signature: readFileSync(`${image}.p7s`),
        manifest: readFileSync(`${image}.manifest.json`),
        manifestSignature: readFileSync(`${image}.manifest.json.p7s`),
        rootCa: readFileSync(root),
        crl: [readFileSync(ca.paths.codeSigningCrl), readFileSync(ca.paths.rootCrl)],
      };
      timed(['openssl', 'dgst', '-sha256', image]); // page cache warm-up, not measured

      const contenders: [string, () => Promise<number>][] = [
        [
          'podboot verifyImage (in process)',
          async () => {
            const t = process.hrtime.bigint();
            await verifyImage({ image, ...inputs });
            return Number(process.hrtime.bigint() - t) / 1e9;
          },
        ],
        ['openssl dgst -sha256', async () => timed(['openssl', 'dgst', '-sha256', image])],
        ['podboot verify (CLI process)', async () => timed([process.execPath, PODBOOT_CLI, 'verify', image, '--ca', root, '--crl', ca.paths.codeSigningCrl, '--crl', ca.paths.rootCrl])],
        [
          'openssl cms -verify',
          async () => timed(['openssl', 'cms', '-verify', '-binary', '-inform', 'DER', '-in', `${image}.p7s`, '-content', image, '-CAfile', root, '-purpose', 'any', '-out', '/dev/null']),
        ],
      ];
      const mbps: Record<string, number[]> = Object.fromEntries(contenders.map(([n]) => [n, []]));
      const rows: (string | number)[][] = [['round', ...contenders.map(([n]) => n)]];
      for (let r = 1; r <= rounds; r++) {
        const row: (string | number)[] = [r];
        for (const [name, fn] of contenders) {
          const rate = bytes / (await fn()) / 1e6;
          mbps[name]!.push(rate);
          row.push(`${rate.toFixed(0)} MB/s`);
        }
        rows.push(row);
        process.stdout.write(`round ${r}: ${row.slice(1).join('  ')}\n`);
      }
      process.stdout.write(`\n${table(rows)}\n\n`);
      const ratio = (a: string, b: string) => median(mbps[a]!.map((x, i) => x / mbps[b]![i]!));
      const lib = ratio('podboot verifyImage (in process)', 'openssl dgst -sha256');
      const cli = ratio('podboot verify (CLI process)', 'openssl dgst -sha256');
      const cms = ratio('podboot verifyImage (in process)', 'openssl cms -verify');
      process.stdout.write(
        [
          `median ratio podboot verifyImage / openssl dgst -sha256: ${lib.toFixed(2)}x (target >= 0.7x: ${lib >= 0.7 ? 'met' : 'NOT met'})`,
          `median ratio podboot verify CLI  / openssl dgst -sha256: ${cli.toFixed(2)}x`,
          `median ratio podboot verifyImage / openssl cms -verify:  ${cms.toFixed(2)}x`,
          `SUMMARY verify size_mib:${sizeMiB} rounds:${rounds} ${contenders.map(([n]) => `${n.split(' (')[0]!.replace(/ /g, '_')}_MB/s:${median(mbps[n]!).toFixed(0)}`).join(' ')} ratio_vs_dgst:${lib.toFixed(2)}`,
        ].join('\n') + '\n',
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
