// Where the central node, its pods and the commands that read their state
// look when no --state is given. As root the node runs each pod as its own
// unprivileged user, which must be able to pass through every directory above
// its state: ./state inside a checkout under /root (mode 0700 on Debian)
// would shut every pod out, so root's default is the FHS place for a
// service's state. PODBOOT_STATE overrides both.
export const ROOT_STATE_DIR = '/var/lib/podboot';

export function defaultStateRoot(env: NodeJS.ProcessEnv = process.env, uid: number | undefined = process.getuid?.()): string {
  if (env.PODBOOT_STATE) return env.PODBOOT_STATE;
  return uid === 0 ? ROOT_STATE_DIR : 'state';
}

/** The line every --state help text carries. */
export const STATE_DEFAULT_HELP = `default ${ROOT_STATE_DIR} as root, ./state otherwise, or $PODBOOT_STATE`;
