// A GUID partition table writer for raw disk images (UEFI spec, chapter 5):
// protective MBR entry, primary header and entry array at LBA 1..33, backup
// array and header at the end. Written here rather than with sfdisk so the
// GUIDs, and with them the image bytes, are ours to fix: a build must give
// the same bytes for the same inputs.
import { crc32 } from 'node:zlib';

export const SECTOR = 512;
const ENTRY_SIZE = 128;
const ENTRY_COUNT = 128;
/** sectors the 128 × 128-byte entry array takes */
export const ENTRY_ARRAY_SECTORS = (ENTRY_SIZE * ENTRY_COUNT) / SECTOR;
const HEADER_SIZE = 92;

export const ESP_TYPE = 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B';
/** Attribute bit 2: syslinux's gptmbr.bin boots the partition that has it (BIOS on a GPT disk). */
export const LEGACY_BIOS_BOOTABLE = 1n << 2n;

export interface GptPartition {
  type: string;
  guid: string;
  firstLba: number;
  lastLba: number;
  attributes?: bigint;
  /** at most 36 UTF-16 code units */
  name: string;
}

export interface GptLayout {
  diskGuid: string;
  partitions: GptPartition[];
}

/**
 * GUID text → the on-disk mixed-endian form: the first three fields are
 * little-endian, the last two stay in text order.
 */
export function guidBytes(text: string): Buffer {
  const m = /^([0-9a-f]{8})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{12})$/i.exec(text);
  if (!m) throw new Error(`not a GUID: ${text}`);
  const b = Buffer.alloc(16);
  b.writeUInt32LE(parseInt(m[1]!, 16), 0);
  b.writeUInt16LE(parseInt(m[2]!, 16), 4);
  b.writeUInt16LE(parseInt(m[3]!, 16), 6);
  Buffer.from(m[4]! + m[5]!, 'hex').copy(b, 8);
  return b;
}

export function guidText(b: Buffer): string {
  const hex = (n: number, w: number) => n.toString(16).padStart(w, '0');
  const tail = b.subarray(8, 16).toString('hex');
  return `${hex(b.readUInt32LE(0), 8)}-${hex(b.readUInt16LE(4), 4)}-${hex(b.readUInt16LE(6), 4)}-${tail.slice(0, 4)}-${tail.slice(4)}`.toUpperCase();
}

/** A version-4-shaped GUID derived from a text: stable across builds, distinct per text. */
export function stableGuid(seed: Buffer): string {
  const b = Buffer.from(seed.subarray(0, 16));
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`.toUpperCase();
}

/** First and last LBA a partition may use on a disk of `sectors` sectors. */
export function usableRange(sectors: number): { first: number; last: number } {
  return { first: 2 + ENTRY_ARRAY_SECTORS, last: sectors - 2 - ENTRY_ARRAY_SECTORS };
}

function entryArray(layout: GptLayout): Buffer {
  if (layout.partitions.length > ENTRY_COUNT) throw new Error(`GPT: ${layout.partitions.length} partitions, at most ${ENTRY_COUNT}`);
  const a = Buffer.alloc(ENTRY_SIZE * ENTRY_COUNT);
  layout.partitions.forEach((p, i) => {
    const e = i * ENTRY_SIZE;
    guidBytes(p.type).copy(a, e);
    guidBytes(p.guid).copy(a, e + 16);
    a.writeBigUInt64LE(BigInt(p.firstLba), e + 32);
    a.writeBigUInt64LE(BigInt(p.lastLba), e + 40);
    a.writeBigUInt64LE(p.attributes ?? 0n, e + 48);
    const name = Buffer.from(p.name, 'utf16le');
    if (name.length > 72) throw new Error(`GPT: partition name ${p.name} is longer than 36 characters`);
    name.copy(a, e + 56);
  });
  return a;
}

function header(myLba: number, alternateLba: number, entriesLba: number, sectors: number, diskGuid: string, entriesCrc: number): Buffer {
  const h = Buffer.alloc(SECTOR);
  h.write('EFI PART', 0, 'latin1');
  h.writeUInt32LE(0x00010000, 8); // revision 1.0
  h.writeUInt32LE(HEADER_SIZE, 12);
  h.writeBigUInt64LE(BigInt(myLba), 24);
  h.writeBigUInt64LE(BigInt(alternateLba), 32);
  const { first, last } = usableRange(sectors);
  h.writeBigUInt64LE(BigInt(first), 40);
  h.writeBigUInt64LE(BigInt(last), 48);
  guidBytes(diskGuid).copy(h, 56);
  h.writeBigUInt64LE(BigInt(entriesLba), 72);
  h.writeUInt32LE(ENTRY_COUNT, 80);
  h.writeUInt32LE(ENTRY_SIZE, 84);
  h.writeUInt32LE(entriesCrc, 88);
  // the header CRC is taken with its own field zero
  h.writeUInt32LE(crc32(h.subarray(0, HEADER_SIZE)), 16);
  return h;
}

/**
 * The partition table of a disk of `sectors` sectors as two pieces: `head`
 * (protective MBR with its boot code area zero, primary header, entries:
 * LBA 0..33) and `tail` (backup entries and header, the last 33 sectors).
 * For disks too big to hold in memory; writeGpt lays both into a buffer.
 */
export function gptRegions(sectors: number, layout: GptLayout): { head: Buffer; tail: Buffer } {
  const { first, last } = usableRange(sectors);
  const sorted = [...layout.partitions].sort((a, b) => a.firstLba - b.firstLba);
  sorted.forEach((p, i) => {
    if (p.firstLba < first || p.lastLba > last || p.lastLba < p.firstLba) throw new Error(`GPT: partition ${p.name} (${p.firstLba}..${p.lastLba}) outside ${first}..${last}`);
    const next = sorted[i + 1];
    if (next && next.firstLba <= p.lastLba) throw new Error(`GPT: partitions ${p.name} and ${next.name} overlap`);
  });
  const head = Buffer.alloc((2 + ENTRY_ARRAY_SECTORS) * SECTOR);
  // Protective MBR: one type-0xEE entry over the whole disk (capped at 2^32-1 sectors), not marked active.
  const pe = 446;
  head.set([0x00, 0x02, 0x00], pe + 1); // CHS of LBA 1
  head[pe + 4] = 0xee;
  head.set([0xff, 0xff, 0xff], pe + 5); // CHS beyond what CHS can say
  head.writeUInt32LE(1, pe + 8);
  head.writeUInt32LE(Math.min(sectors - 1, 0xffffffff), pe + 12);
  head.writeUInt16LE(0xaa55, 510);
  const entries = entryArray(layout);
  const entriesCrc = crc32(entries);
  const backupEntriesLba = sectors - 1 - ENTRY_ARRAY_SECTORS;
  header(1, sectors - 1, 2, sectors, layout.diskGuid, entriesCrc).copy(head, SECTOR);
  entries.copy(head, 2 * SECTOR);
  const tail = Buffer.alloc((1 + ENTRY_ARRAY_SECTORS) * SECTOR);
  entries.copy(tail, 0);
  header(sectors - 1, 1, backupEntriesLba, sectors, layout.diskGuid, entriesCrc).copy(tail, ENTRY_ARRAY_SECTORS * SECTOR);
  return { head, tail };
}

/**
 * Writes the partition table into `img` (a whole disk, a multiple of 512
 * bytes). The MBR's boot code (bytes 0..439) is left as it is: the caller
 * puts a BIOS loader there if the disk should also boot under BIOS.
 */
export function writeGpt(img: Buffer, layout: GptLayout): void {
  if (img.length % SECTOR) throw new Error('GPT: image size is not a multiple of 512');
  const sectors = img.length / SECTOR;
  const { head, tail } = gptRegions(sectors, layout);
  head.copy(img, 440, 440, SECTOR);
  head.copy(img, SECTOR, SECTOR);
  tail.copy(img, img.length - tail.length);
}
