// Webhook posts from log rules: JSON, bounded in time and in number, never
// awaited by the code that found the match, so a slow or dead receiver can
// never hold the pod's event loop or its answers to the agent.
import type { Logger } from 'pino';

const TIMEOUT_MS = 5000;
const MAX_IN_FLIGHT = 16;

export class WebhookPoster {
  private inFlight = 0;
  dropped = 0;
  sent = 0;
  failed = 0;

  constructor(
    private readonly log: Logger,
    private readonly timeoutMs = TIMEOUT_MS,
  ) {}

  post(url: string, body: Record<string, unknown>, fields: Record<string, unknown>): void {
    if (this.inFlight >= MAX_IN_FLIGHT) {
      this.dropped++;
      this.log.warn({ ...fields, webhook: hostOf(url), inFlight: this.inFlight }, 'task webhook dropped: too many still in flight');
      return;
    }
    this.inFlight++;
    fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(this.timeoutMs), redirect: 'error' })
      .then(async (res) => {
        // The body is not wanted, but must be consumed for the connection to be reused or freed.
        await res.arrayBuffer().catch(() => undefined);
        if (res.ok) this.sent++;
        else {
          this.failed++;
          this.log.warn({ ...fields, webhook: hostOf(url), status: res.status }, 'task webhook answered with an error');
        }
      })
      .catch((err: Error) => {
        this.failed++;
        this.log.warn({ ...fields, webhook: hostOf(url), err: err.message }, 'task webhook failed');
      })
      .finally(() => this.inFlight--);
  }
}

/** Only the host goes to logs: a URL's path or query may carry a receiver's secret. */
function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return '?';
  }
}
