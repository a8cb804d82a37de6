// Where things are on a podboot Debian disk. The builder lays the image out
// this way, and stage1's stream installer finds the seed partition by its
// GPT entry, so the numbers here are the builder's alone; they are exported
// for tests and docs.
import { createHash } from 'node:crypto';
import { stableGuid } from './gpt.js';

const MiB = 1024 * 1024;
export const SECTOR_BYTES = 512;
const sectors = (bytes: number) => bytes / SECTOR_BYTES;

/** EFI system partition: kernel, initrd, systemd-boot and syslinux; FAT32, room for a second kernel. */
export const ESP_FIRST = sectors(1 * MiB);
export const ESP_SECTORS = sectors(128 * MiB);
/** The per-server layer: stage1 writes the pod's cloud-init NoCloud seed (a FAT volume labelled CIDATA) here. */
export const SEED_FIRST = ESP_FIRST + ESP_SECTORS;
export const SEED_SECTORS = sectors(4 * MiB);
/** The root file system, last so cloud-init's growpart can grow it over the rest of the disk. */
export const ROOT_FIRST = SEED_FIRST + SEED_SECTORS;
/** GPT entry index (1-based, as Linux names partitions) of the seed partition. */
export const SEED_PARTITION = 2;

/** Linux filesystem data (root), and Microsoft basic data for the FAT seed volume. */
export const LINUX_FS_TYPE = '0FC63DAF-8483-4772-8E79-3D69D8477DE4';
export const BASIC_DATA_TYPE = 'EBD0A0A2-B9E5-4433-87C0-68B6B72699C7';

/** Fixed identifiers: the same in every build, so the image is reproducible and the kernel finds its root. */
export const guidOf = (what: string): string => stableGuid(createHash('sha256').update(`podboot debian ${what}`).digest());
export const ROOT_PARTUUID = guidOf('root partition');
export const ESP_PARTUUID = guidOf('esp partition');
export const SEED_PARTUUID = guidOf('seed partition');
export const DISK_GUID = guidOf('disk');
/** ext4 file system UUID and directory hash seed (mke2fs draws both at random otherwise); the ESP's FAT volume id is mkfs.vfat --invariant's */
export const ROOT_FS_UUID = guidOf('root fs').toLowerCase();
export const ROOT_FS_HASH_SEED = guidOf('root fs hash seed').toLowerCase();
