// The console's readable lines (issue 20): time, level, pod, server, message,
// then the other fields; secrets stay hidden; what is not a JSON log line
// passes through as it is; and the logger's console writes JSON or pretty.
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { chooseLogFormat } from '../../src/cli/log-format.js';
import { UsageError } from '../../src/cli/command.js';
import { createLogger, logConsole } from '../../src/log.js';
import { formatLogLine } from '../../src/log-pretty.js';

const dir = mkdtempSync(join(tmpdir(), 'pb-log-pretty-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const DHCPACK = JSON.stringify({
  level: 'info',
  time: '2025-03-04T12:00:01.123Z',
  pod: 'rack-a',
  mac: '52:54:00:00:00:01',
  xid: '0x1a2b3c4d',
  giaddr: '10.31.0.1',
  type: 'REQUEST',
  address: '10.31.1.0',
  boot: 'undionly.kpxe',
  msg: 'DHCPACK',
});

describe('formatLogLine', () => {
  it('puts time, level, pod, server MAC and message first, then every other field as key=value', () => {
    expect(formatLogLine(DHCPACK)).toBe('12:00:01.123Z INFO  rack-a 52:54:00:00:00:01 DHCPACK xid=0x1a2b3c4d giaddr=10.31.0.1 type=REQUEST address=10.31.1.0 boot=undionly.kpxe');
    expect(formatLogLine(DHCPACK, { date: true })).toMatch(/^2025-03-04 12:00:01\.123Z INFO {2}rack-a /);
  });

  it("names the central node and the pod a node's line is about; no server column without a mac", () => {
    const line = JSON.stringify({ level: 'info', time: '2025-03-04T12:00:02.000Z', node: 'central', pod: 'rack-a', pid: 4242, restarts: 0, msg: 'pod instance starting' });
    expect(formatLogLine(line)).toBe('12:00:02.000Z INFO  central/rack-a pod instance starting pid=4242 restarts=0');
    expect(formatLogLine(JSON.stringify({ level: 'info', time: '2025-03-04T12:00:02.000Z', node: 'central', msg: 'central node serving' }))).toBe('12:00:02.000Z INFO  central central node serving');
  });

  it('every level by name or pino number, padded to one width; colours only when asked', () => {
    const at = (level: unknown) => formatLogLine(JSON.stringify({ level, time: '2025-03-04T12:00:00.000Z', msg: 'm' }));
    expect([10, 20, 30, 40, 50, 60].map((n) => at(n).slice(14, 20))).toEqual(['TRACE ', 'DEBUG ', 'INFO  ', 'WARN  ', 'ERROR ', 'FATAL ']);
    expect(at('warn')).toBe('12:00:00.000Z WARN  m');
    expect(at('info')).not.toContain('\x1b[');
    const colored = formatLogLine(JSON.stringify({ level: 'error', time: '2025-03-04T12:00:00.000Z', msg: 'm' }), { color: true });
    expect(colored).toBe('12:00:00.000Z \x1b[31mERROR\x1b[0m m');
  });

  it('quotes values that would not read back (blanks, quotes, =), keeps objects as compact JSON', () => {
    const line = JSON.stringify({
      level: 'info',
      time: '2025-03-04T12:00:00.000Z',
      msg: 'pod file refused',
      reason: 'two words',
      eq: 'a=b',
      n: 3,
      ok: true,
      none: null,
      list: ['a', 'b'],
      o: { x: 1 },
    });
    expect(formatLogLine(line)).toBe('12:00:00.000Z INFO  pod file refused reason="two words" eq="a=b" n=3 ok=true none=null list=["a","b"] o={"x":1}');
  });

  it('an error object: its message inline, its stack frames indented under the line', () => {
    const line = JSON.stringify({
      level: 'error',
      time: '2025-03-04T12:00:00.000Z',
      pod: 'rack-a',
      err: { type: 'Error', message: 'boom', stack: 'Error: boom\n    at f (a.js:1:1)\n    at g (b.js:2:2)' },
      msg: 'failed',
    });
    expect(formatLogLine(line)).toBe('12:00:00.000Z ERROR rack-a failed err=boom\n    at f (a.js:1:1)\n    at g (b.js:2:2)');
  });

  it('hides secrets at the root and one level down even in lines it did not write', () => {
    const line = JSON.stringify({ level: 'info', time: '2025-03-04T12:00:00.000Z', msg: 'm', token: 'T0P', req: { authorization: 'Bearer abc', path: '/x' }, key: 'k' });
    const out = formatLogLine(line);
    expect(out).toBe('12:00:00.000Z INFO  m token=[redacted] req={"authorization":"[redacted]","path":"/x"} key=[redacted]');
    for (const secret of ['T0P', 'Bearer abc']) expect(out).not.toContain(secret);
  });

  it('a line that is not a JSON log record passes through unchanged', () => {
    for (const line of ['Error: something broke', '    at Object.<anonymous> (/x.js:1:1)', '', '{not json', '[1,2,3]', '{"level":"info","no":"message"}', '(node:1234) Warning: something'])
      expect(formatLogLine(line)).toBe(line);
  });
});

describe('the console', () => {
  /** What a console on a file gets from a logger and a relayed line. */
  async function consoleText(format: 'json' | 'pretty', lines: number, write: (log: ReturnType<typeof createLogger>, relay: (line: string) => void) => void): Promise<string> {
    const file = join(dir, `${format}-${lines}.log`);
    const fd = openSync(file, 'w');
    const out = logConsole(format, fd, false);
    const log = createLogger({ node: 'central' }, { destination: out.destination });
    write(log, out.relay);
    // pino's destination writes asynchronously: wait for the lines to reach the file.
    let text = '';
    for (let i = 0; i < 200 && text.split('\n').length <= lines; i++) {
      await new Promise((r) => setTimeout(r, 10));
      text = readFileSync(file, 'utf8');
    }
    closeSync(fd);
    return text;
  }

  it('pretty: the logger and a relayed pod line both come out readable; secrets redacted before formatting', async () => {
    const text = await consoleText('pretty', 3, (log, relay) => {
      log.info({ token: 'secret-token', url: 'https://127.0.0.1:9443/' }, 'operator page');
      relay(DHCPACK);
      relay('plain text from a pod');
    });
    const lines = text.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^\d\d:\d\d:\d\d\.\d{3}Z INFO {2}central operator page token=\[redacted\] url=https:\/\/127\.0\.0\.1:9443\/$/);
    expect(lines[1]).toBe('12:00:01.123Z INFO  rack-a 52:54:00:00:00:01 DHCPACK xid=0x1a2b3c4d giaddr=10.31.0.1 type=REQUEST address=10.31.1.0 boot=undionly.kpxe');
    expect(lines[2]).toBe('plain text from a pod');
    expect(text).not.toContain('secret-token');
  });

  it('json: the logger writes JSON lines and a relayed line goes out exactly as the pod wrote it', async () => {
    const text = await consoleText('json', 2, (log, relay) => {
      log.warn({ password: 'pw' }, 'hello');
      relay(DHCPACK);
    });
    const lines = text.trimEnd().split('\n');
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 'warn', node: 'central', password: '[redacted]', msg: 'hello' });
    expect(lines[1]).toBe(DHCPACK);
  });
});

describe('--log-format', () => {
  it('pretty on a terminal, JSON otherwise, unless asked; anything else is a usage error', () => {
    expect(chooseLogFormat(undefined, true)).toBe('pretty');
    expect(chooseLogFormat(undefined, false)).toBe('json');
    expect(chooseLogFormat('json', true)).toBe('json');
    expect(chooseLogFormat('pretty', false)).toBe('pretty');
    expect(() => chooseLogFormat('yaml', true)).toThrow(UsageError);
  });
});
