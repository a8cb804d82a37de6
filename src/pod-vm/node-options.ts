// A 2 MiB young generation: V8 lets it grow to 16 MiB per semi-space under
// the warm-up and never gives it back to an idle process, and its scavenges
// (the DHCP latency tail) are shorter (docs/operations.md, Sizing;
// docs/decisions.md). What `podboot serve` runs every instance with unless
// told otherwise, and what the DHCP bench runs its pod with.
export const DEFAULT_INSTANCE_NODE_OPTIONS = '--max-semi-space-size=2';
