// A 2 MiB young generation: V8 lets it grow to 16 MiB per semi-space under
// the warm-up and never gives it back to an idle process, and its scavenges
// (the DHCP latency tail) are shorter (docs/operations.md, Sizing;
// docs/decisions.md). What `podboot serve` runs every instance with unless
// told otherwise, and what the DHCP bench runs its pod with.
export const DEFAULT_INSTANCE_NODE_OPTIONS = '--max-semi-space-size=2';

// V8's linear-time RegExp engine, for the log rules of remote tasks
// (src/tasks/rules.ts): every instance gets it, whatever else the operator
// chose with --instance-node-options, so no rule can backtrack for ever.
export const REQUIRED_INSTANCE_NODE_OPTIONS: readonly string[] = ['--enable-experimental-regexp-engine'];
