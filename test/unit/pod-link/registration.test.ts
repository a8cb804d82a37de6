// A pod's registration token (src/pod-link/registration.ts): made by the
// central node from a key only it keeps, written for the pod by the
// supervisor, read (or, run by hand next to the key, derived) by the pod.
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { podRegistrationToken, registerKey, registerKeyPath, registerTokenPath, registrationToken, writeRegistrationToken } from '../../../src/pod-link/registration.js';

const dir = mkdtempSync(join(tmpdir(), 'pbv-targets-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('registration tokens', () => {
  it('are made from a key kept 0600, stable across reads, different per pod', async () => {
    const key = await registerKey(dir);
    expect(statSync(registerKeyPath(dir)).mode & 0o777).toBe(0o600);
    expect((await registerKey(dir)).equals(key)).toBe(true);
    expect(registrationToken(key, 'rack-a')).toBe(registrationToken(key, 'rack-a'));
    expect(registrationToken(key, 'rack-a')).not.toBe(registrationToken(key, 'rack-b'));
    expect(registrationToken(Buffer.alloc(32, 1), 'rack-a')).not.toBe(registrationToken(key, 'rack-a'));
    await writeRegistrationToken(dir, 'rack-a', registrationToken(key, 'rack-a'));
    const file = join(dir, 'rack-a', 'register.token');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, 'utf8').trim()).toBe(registrationToken(key, 'rack-a'));
  });

  it('the pod reads the token it was given, derives (and keeps) its own next to the key, and has none without either', async () => {
    const key = await registerKey(dir);
    // given by the supervisor (the test above)
    expect(await podRegistrationToken(dir, 'rack-a')).toBe(registrationToken(key, 'rack-a'));
    // run by hand on the node's state root: derived from the key and kept 0600
    mkdirSync(join(dir, 'rack-c'), { recursive: true });
    expect(await podRegistrationToken(dir, 'rack-c')).toBe(registrationToken(key, 'rack-c'));
    expect(statSync(registerTokenPath(dir, 'rack-c')).mode & 0o777).toBe(0o600);
    // no token and no key: not registering
    const bare = join(dir, 'bare');
    mkdirSync(join(bare, 'rack-a'), { recursive: true });
    expect(await podRegistrationToken(bare, 'rack-a')).toBeUndefined();
    // a key too short to be one
    mkdirSync(join(bare, 'central'), { recursive: true });
    writeFileSync(registerKeyPath(bare), Buffer.alloc(8).toString('base64url'));
    chmodSync(registerKeyPath(bare), 0o600);
    expect(await podRegistrationToken(bare, 'rack-a')).toBeUndefined();
  });
});
