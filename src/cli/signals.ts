/** Resolves with the first SIGTERM or SIGINT; a long-running command stops cleanly on it. */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (sig: NodeJS.Signals) => {
      process.off('SIGTERM', on);
      process.off('SIGINT', on);
      resolve(sig);
    };
    process.on('SIGTERM', on);
    process.on('SIGINT', on);
  });
}

/**
 * Calls `fn` at every SIGHUP until the returned function is called. Node's
 * default for SIGHUP is to exit, which would stop a node and every pod with
 * it; SIGHUP is the reload signal of the daemons operators know (Kea,
 * dnsmasq, nginx), so a long-running command turns it into a reload.
 * Reloads do not overlap: a SIGHUP during one runs one more afterwards.
 */
export function onReloadSignal(fn: () => Promise<void>): () => void {
  let running: Promise<void> | undefined;
  let again = false;
  const run = (): void => {
    if (running) {
      again = true;
      return;
    }
    // fn logs its own failures; one that escapes must still not stop the node.
    running = fn()
      .catch(() => undefined)
      .finally(() => {
        running = undefined;
        if (again) {
          again = false;
          run();
        }
      });
  };
  process.on('SIGHUP', run);
  return () => process.off('SIGHUP', run);
}

/**
 * An AbortSignal that aborts at the first SIGTERM or SIGINT, for a command
 * that follows something until the operator stops it (`logs --follow`,
 * `events --follow`); `done()` removes the handlers once it ends by itself.
 */
export function stopOnSignal(): { signal: AbortSignal; done(): void } {
  const ac = new AbortController();
  const on = () => {
    done();
    ac.abort();
  };
  const done = () => {
    process.off('SIGTERM', on);
    process.off('SIGINT', on);
  };
  process.on('SIGTERM', on);
  process.on('SIGINT', on);
  return { signal: ac.signal, done };
}
