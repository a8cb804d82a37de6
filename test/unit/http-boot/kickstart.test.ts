import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { KICKSTART_VALUES, renderKickstart, unknownPlaceholders, type KickstartValues } from '../../../src/http-boot/kickstart.js';

const PEM = '-----BEGIN CERTIFICATE-----\nMIIBkTCB+wIJAKHB\nAbCd==\n-----END CERTIFICATE-----\n';
const values = Object.fromEntries(KICKSTART_VALUES.map((k) => [k, `v-${k}`])) as KickstartValues;

describe('kickstart rendering', () => {
  it('quotes inventory values for sh so they cannot run commands', () => {
    const evil = "x'; touch /tmp/pwned; echo '";
    const out = renderKickstart('h={{hostname|sh}}\necho "$h"\n', { ...values, hostname: evil });
    const r = spawnSync('sh', ['-c', out], { encoding: 'utf8' });
    expect(r.stdout).toBe(evil + '\n');
  });

  it('strips what could end a directive from unquoted values, keeps PEM lines with |pem', () => {
    expect(renderKickstart('network --hostname={{hostname}}', { ...values, hostname: 'a b\n%post\nrm -rf /' })).toBe('network --hostname=abpostrm-rf/');
    expect(renderKickstart('{{rootCa|pem}}', { ...values, rootCa: PEM })).toBe(PEM.trim());
    expect(renderKickstart('{{rootCa|pem}}', { ...values, rootCa: PEM + '%post\n' })).toBe('');
  });

  it('the shipped templates use only known placeholders and render as valid sh', () => {
    for (const f of ['kickstart/lab-image.sh', 'kickstart/rhel9.ks']) expect(unknownPlaceholders(readFileSync(f, 'utf8'))).toEqual([]);
    expect(unknownPlaceholders('{{nope}} {{hostname}}')).toEqual(['nope']);
    const lab = renderKickstart(readFileSync('kickstart/lab-image.sh', 'utf8'), { ...values, rootCa: PEM });
    expect(spawnSync('sh', ['-n'], { input: lab }).status).toBe(0);
    expect(lab).not.toMatch(/\{\{/);
  });

  it('the lab kickstart refuses to run without a verified image', () => {
    const lab = renderKickstart(readFileSync('kickstart/lab-image.sh', 'utf8'), { ...values, rootCa: PEM, disk: '/dev/null-disk' });
    const r = spawnSync('sh', ['-c', lab], { encoding: 'utf8', env: { PATH: process.env.PATH } });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('no verified image');
  });
});
