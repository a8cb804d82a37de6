import { describe, expect, it } from 'vitest';
import { DerError, TAG, decode, encode, integer, items, namedBits, oid, readBitString, readBoolean, readInteger, readOid, readTime, seq, setOf, time } from '../../../src/signing/der.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

describe('DER encoding', () => {
  it('encodes INTEGERs minimally, with a sign byte when the top bit is set', () => {
    expect(integer(0n).toString('hex')).toBe('020100');
    expect(integer(127n).toString('hex')).toBe('02017f');
    expect(integer(128n).toString('hex')).toBe('02020080');
    expect(integer(hex('0000ff')).toString('hex')).toBe('020200ff');
    for (const v of [0n, 1n, 255n, 256n, 2n ** 127n + 5n]) expect(readInteger(decode(integer(v)), 'x')).toBe(v);
  });

  it('encodes OIDs as X.690 says (sha256, a large arc)', () => {
    expect(oid('2.16.840.1.101.3.4.2.1').toString('hex')).toBe('0609608648016503040201');
    for (const o of ['1.2.840.113549.1.7.2', '2.5.29.37.0', '1.3.6.1.5.5.7.3.3', '2.999.1']) expect(readOid(decode(oid(o)), 'x')).toBe(o);
  });

  it('uses UTCTime until 2049 and GeneralizedTime from 2050', () => {
    expect(time(new Date('2031-03-15T12:00:00Z')).toString('latin1').slice(2)).toBe('310315120000Z');
    expect(time(new Date('2050-01-01T00:00:00Z'))[0]).toBe(TAG.GENERALIZED_TIME);
    for (const d of ['1999-12-31T23:59:59Z', '2049-12-31T23:59:59Z', '2050-01-01T00:00:00Z']) expect(readTime(decode(time(new Date(d))), 'x').toISOString()).toBe(new Date(d).toISOString());
  });

  it('sorts SET OF by encoding and long lengths use the minimal long form', () => {
    const a = encode(TAG.OCTET_STRING, Buffer.from('b'));
    const b = encode(TAG.OCTET_STRING, Buffer.from('a'));
    expect(setOf(a, b).subarray(2)).toEqual(Buffer.concat([b, a]));
    const big = encode(TAG.OCTET_STRING, Buffer.alloc(300));
    expect(big.subarray(0, 4).toString('hex')).toBe('0482012c');
    expect(decode(big).content.length).toBe(300);
  });

  it('drops trailing zero bits of named bit strings (keyUsage)', () => {
    // keyCertSign (5) + cRLSign (6): one byte 0x06, 1 unused bit
    expect(namedBits([5, 6]).toString('hex')).toBe('03020106');
    expect(namedBits([0]).toString('hex')).toBe('03020780');
  });
});

describe('DER decoding refuses what DER forbids', () => {
  const bad = (bytes: string, message: RegExp, read: (b: Buffer) => unknown = decode) => expect(() => read(hex(bytes))).toThrow(message);

  it('indefinite and non-minimal lengths, oversize length fields', () => {
    bad('3080 0500 0000', /indefinite length/);
    bad('30 8102 0500', /not minimally encoded/);
    bad('30 820002 0500', /not minimally encoded/);
    bad('04 85 0100000000', /length field of 5 bytes/);
  });

  it('truncation anywhere, and trailing bytes', () => {
    bad('30', /truncated/);
    bad('30 05 0500', /truncated SEQUENCE: needs 5 bytes, 2 left/);
    bad('04 82 01', /truncated OCTET_STRING length/);
    bad('0500 00', /1 bytes of trailing data/);
  });

  it('high tag numbers', () => bad('1f 22 00', /high tag numbers/));

  it('non-minimal INTEGERs and BOOLEANs other than 00/FF', () => {
    bad('02 02 007f', /not minimally encoded/, (b) => readInteger(decode(b), 'n'));
    bad('02 02 ff80', /not minimally encoded/, (b) => readInteger(decode(b), 'n'));
    bad('02 00', /empty INTEGER/, (b) => readInteger(decode(b), 'n'));
    bad('01 01 01', /BOOLEAN must be 0x00 or 0xFF/, (b) => readBoolean(decode(b), 'b'));
  });

  it('OIDs with padded arcs or an unfinished arc', () => {
    bad('06 03 2a 80 01', /not minimally encoded/, (b) => readOid(decode(b), 'o'));
    bad('06 02 2a 86', /ends mid-arc/, (b) => readOid(decode(b), 'o'));
  });

  it('BIT STRINGs with bad padding', () => {
    bad('03 01 01', /bad BIT STRING padding/, (b) => readBitString(decode(b), 'k'));
    bad('03 02 01 01', /padding bits are not zero/, (b) => readBitString(decode(b), 'k'));
  });

  it('times outside the RFC 5280 profile', () => {
    bad('17 0b 3331303331353132303000', /expected UTCTime/, (b) => readTime(decode(b), 't'));
    bad('17 0d 3331303233303132303030305a', /no such date/, (b) => readTime(decode(b), 't')); // 30 February
    bad('18 11 32303331303331353132303030302e355a', /expected UTCTime/, (b) => readTime(decode(b), 't')); // fractions
  });

  it('elements of the wrong type in a SEQUENCE OF', () => {
    expect(() => items(decode(seq(oid('1.2.3'), integer(1n))), TAG.OID, 'list')).toThrow(DerError);
  });
});
