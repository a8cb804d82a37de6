// Real SSH public key lines, made with node:crypto in the OpenSSH wire format
// (RFC 4253 §6.6, RFC 5656 §3.1), so tests need no ssh-keygen and every run
// checks freshly made keys rather than one pasted sample.
import { generateKeyPairSync } from 'node:crypto';

const sshString = (b: Buffer): Buffer => {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(b.length);
  return Buffer.concat([len, b]);
};

/** An mpint: big-endian, with a 0 byte in front when the top bit is set (else it would read as negative). */
const mpint = (b: Buffer): Buffer => sshString(b[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), b]) : b);

const line = (type: string, fields: Buffer[], comment: string) => `${type} ${Buffer.concat([sshString(Buffer.from(type)), ...fields]).toString('base64')}${comment ? ` ${comment}` : ''}`;

export function ed25519Key(comment = 'ops@laptop'): string {
  const { publicKey } = generateKeyPairSync('ed25519');
  return line('ssh-ed25519', [sshString(Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url'))], comment);
}

export function rsaKey(comment = 'ops@desk'): string {
  const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = publicKey.export({ format: 'jwk' });
  return line('ssh-rsa', [mpint(Buffer.from(jwk.e!, 'base64url')), mpint(Buffer.from(jwk.n!, 'base64url'))], comment);
}

export function ecdsaKey(comment = ''): string {
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = publicKey.export({ format: 'jwk' });
  const point = Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')]);
  return line('ecdsa-sha2-nistp256', [sshString(Buffer.from('nistp256')), sshString(point)], comment);
}

/** A key line whose body says it is `bodyType` while the line says `lineType`. */
export function mislabelledKey(lineType: string, bodyType: string): string {
  const body = Buffer.concat([sshString(Buffer.from(bodyType)), sshString(Buffer.alloc(32, 7))]).toString('base64');
  return `${lineType} ${body} mislabelled`;
}
