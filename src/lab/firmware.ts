// The firmware a lab VM boots with. BIOS: QEMU's SeaBIOS with the iPXE ROM
// of its NIC. UEFI: OVMF from Debian's ovmf package, the code shared and
// read-only, the variable store (the VM's NVRAM) a copy per VM.

export const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd';
export const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd';
