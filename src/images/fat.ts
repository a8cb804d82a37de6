// Makes a FAT16 or FAT32 file system's directory entries independent of the build
// time: `syslinux --install` stamps ldlinux.sys and ldlinux.c32 with the
// current time, and `mmd` stamps the directories it makes (neither has a
// SOURCE_DATE_EPOCH), so two builds differed in a few bytes. Every directory
// entry, in the root and in every subdirectory, gets one fixed date; nothing
// else is touched.

/** DOS date of 2000-01-01 (FAT cannot store times before 1980). */
export const FIXED_DOS_DATE = ((2000 - 1980) << 9) | (1 << 5) | 1;

interface Fat16 {
  clusterBytes: number;
  fat: number;
  /** FAT16: the fixed root directory's offset and size; FAT32: 0 (the root is a cluster chain from rootCluster) */
  root: number;
  rootEntries: number;
  rootCluster: number;
  data: number;
  fat32: boolean;
}

function geometry(img: Buffer, partitionOffset: number): Fat16 {
  const bpb = img.subarray(partitionOffset, partitionOffset + 512);
  if (bpb.readUInt16LE(510) !== 0xaa55) throw new Error('FAT boot sector signature missing');
  const bytesPerSector = bpb.readUInt16LE(11);
  const sectorsPerCluster = bpb[13]!;
  const reserved = bpb.readUInt16LE(14);
  const fats = bpb[16]!;
  const rootEntries = bpb.readUInt16LE(17);
  // FAT32 keeps its FAT size in a 32-bit field and has no fixed root directory.
  const fat32 = rootEntries === 0 && bpb.readUInt16LE(22) === 0;
  const fatSectors = fat32 ? bpb.readUInt32LE(36) : bpb.readUInt16LE(22);
  if (!bytesPerSector || !fatSectors || !sectorsPerCluster) throw new Error('not a FAT12/16/32 file system');
  const fat = partitionOffset + reserved * bytesPerSector;
  const root = fat + fats * fatSectors * bytesPerSector;
  const data = root + Math.ceil((rootEntries * 32) / bytesPerSector) * bytesPerSector;
  return { clusterBytes: sectorsPerCluster * bytesPerSector, fat, root, rootEntries, rootCluster: fat32 ? bpb.readUInt32LE(44) : 0, data, fat32 };
}

function nextCluster(img: Buffer, g: Fat16, c: number): number {
  return g.fat32 ? img.readUInt32LE(g.fat + c * 4) & 0x0fffffff : img.readUInt16LE(g.fat + c * 2);
}

/** Byte ranges of a directory stored in a cluster chain (bounded: a looping chain ends at the cluster count). */
function chain(img: Buffer, g: Fat16, first: number): number[] {
  const starts: number[] = [];
  const limit = (img.length - g.data) / g.clusterBytes + 2;
  const end = g.fat32 ? 0x0ffffff8 : 0xfff8;
  for (let c = first; c >= 2 && c < end && starts.length < limit; c = nextCluster(img, g, c)) {
    starts.push(g.data + (c - 2) * g.clusterBytes);
  }
  return starts;
}

/** Fixes `count` entries from `start`; `ended` when it met the end-of-directory mark. */
function fixEntries(img: Buffer, g: Fat16, start: number, count: number, dosDate: number): { fixed: number; ended: boolean } {
  let fixed = 0;
  for (let i = 0; i < count; i++) {
    const e = start + i * 32;
    const first = img[e]!;
    if (first === 0x00) return { fixed, ended: true };
    if (first === 0xe5) continue; // deleted
    const attr = img[e + 11]!;
    if (attr === 0x0f) continue; // long-name entry: no times
    img[e + 13] = 0; // creation time, tenths of a second
    img.writeUInt16LE(0, e + 14); // creation time
    img.writeUInt16LE(dosDate, e + 16); // creation date
    img.writeUInt16LE(dosDate, e + 18); // access date
    img.writeUInt16LE(0, e + 22); // write time
    img.writeUInt16LE(dosDate, e + 24); // write date
    fixed++;
    const isDot = first === 0x2e; // "." and "..": their clusters are this directory and its parent
    const cluster = img.readUInt16LE(e + 26) + (g.fat32 ? img.readUInt16LE(e + 20) * 0x10000 : 0);
    if (attr & 0x10 && !isDot) fixed += fixDirectory(img, g, cluster, dosDate);
  }
  return { fixed, ended: false };
}

function fixDirectory(img: Buffer, g: Fat16, firstCluster: number, dosDate: number): number {
  let fixed = 0;
  for (const start of chain(img, g, firstCluster)) {
    const r = fixEntries(img, g, start, g.clusterBytes / 32, dosDate);
    fixed += r.fixed;
    if (r.ended) break;
  }
  return fixed;
}

/** Rewrites creation/access/write times of every directory entry in place. Returns how many entries it fixed. */
export function fixFatTimes(img: Buffer, partitionOffset: number, dosDate = FIXED_DOS_DATE): number {
  const g = geometry(img, partitionOffset);
  return g.fat32 ? fixDirectory(img, g, g.rootCluster, dosDate) : fixEntries(img, g, g.root, g.rootEntries, dosDate).fixed;
}
