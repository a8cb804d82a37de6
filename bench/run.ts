import { benches } from './registry.js';

// `npm run bench` runs every benchmark; `npm run bench -- dhcp tftp` only those.
const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const unknown = wanted.filter((w) => !benches.some((b) => b.name === w));
if (unknown.length) {
  process.stderr.write(`unknown benchmark(s): ${unknown.join(', ')}; known: ${benches.map((b) => b.name).join(', ')}\n`);
  process.exit(2);
}
const selected = wanted.length ? benches.filter((b) => wanted.includes(b.name)) : benches;
let failed = 0;
for (const b of selected) {
  process.stdout.write(`\n=== bench ${b.name}: ${b.summary}\n`);
  try {
    await b.run(process.argv.slice(2).filter((a) => a.startsWith('-')));
  } catch (err) {
    failed++;
    process.stderr.write(`bench ${b.name} failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  }
}
process.exitCode = failed ? 1 : 0;
