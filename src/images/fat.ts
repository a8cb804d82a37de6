// Makes a FAT16 file system's root directory independent of the build time:
// `syslinux --install` stamps ldlinux.sys and ldlinux.c32 with the current
// time (it has no SOURCE_DATE_EPOCH), so two builds differed in 4 bytes.
// Every root directory entry gets one fixed date; nothing else is touched.

/** DOS date of 2000-01-01 (FAT cannot store times before 1980). */
export const FIXED_DOS_DATE = ((2000 - 1980) << 9) | (1 << 5) | 1;

/** Rewrites creation/access/write times of the root directory entries in place. Returns how many entries it fixed. */
export function fixFat16RootTimes(img: Buffer, partitionOffset: number, dosDate = FIXED_DOS_DATE): number {
  const bpb = img.subarray(partitionOffset, partitionOffset + 512);
  if (bpb.readUInt16LE(510) !== 0xaa55) throw new Error('FAT boot sector signature missing');
  const bytesPerSector = bpb.readUInt16LE(11);
  const reserved = bpb.readUInt16LE(14);
  const fats = bpb[16]!;
  const rootEntries = bpb.readUInt16LE(17);
  const fatSectors = bpb.readUInt16LE(22);
  if (!bytesPerSector || !rootEntries || !fatSectors) throw new Error('not a FAT12/16 file system (no fixed root directory)');
  const root = partitionOffset + (reserved + fats * fatSectors) * bytesPerSector;
  let fixed = 0;
  for (let i = 0; i < rootEntries; i++) {
    const e = root + i * 32;
    const first = img[e]!;
    if (first === 0x00) break; // end of directory
    if (first === 0xe5) continue; // deleted
    if (img[e + 11] === 0x0f) continue; // long-name entry: no times
    img[e + 13] = 0; // creation time, tenths of a second
    img.writeUInt16LE(0, e + 14); // creation time
    img.writeUInt16LE(dosDate, e + 16); // creation date
    img.writeUInt16LE(dosDate, e + 18); // access date
    img.writeUInt16LE(0, e + 22); // write time
    img.writeUInt16LE(dosDate, e + 24); // write date
    fixed++;
  }
  return fixed;
}
