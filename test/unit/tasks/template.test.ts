// Task templates: every value is one shell word whatever it holds, a missing
// or unknown parameter is an error naming it, and a placeholder the shell
// would still expand (inside "…") is refused when the template is read.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readLibrary } from '../../../src/tasks/library.js';
import { parseTemplate, renderTemplate, shellQuote, TemplateError } from '../../../src/tasks/template.js';

const tmp = mkdtempSync(join(tmpdir(), 'pb-task-tpl-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const HOSTILE = ["it's", 'a; touch /tmp/pwned', '$(id)', '`id`', '"quoted" \\ back', 'new\nline', '', "''", '*'];

describe('task templates', () => {
  it('shellQuote: sh reads back exactly the value, nothing runs', () => {
    for (const v of HOSTILE) {
      const out = execFileSync('sh', ['-c', `printf '%s' ${shellQuote(v)}`], { encoding: 'utf8' });
      expect(out).toBe(v);
    }
  });

  it('renders placeholders with their values and defaults; the sha256 is of the script', () => {
    const t = parseTemplate('greet', "#!/bin/sh\n#% description Say it\n#% param who=world\n#% timeout 30\nprintf '%s %s\\n' {{greeting}} {{ who }}\n");
    expect(t.params).toEqual([{ name: 'greeting' }, { name: 'who', default: 'world' }]);
    expect(t).toMatchObject({ description: 'Say it', timeoutSeconds: 30 });
    const r = renderTemplate(t, { greeting: "it's $(id)" });
    expect(r.script).toContain(`printf '%s %s\\n' 'it'\\''s $(id)' 'world'\n`);
    expect(r.values).toEqual({ greeting: "it's $(id)", who: 'world' });
    expect(r.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(execFileSync('sh', ['-c', r.script], { encoding: 'utf8' })).toBe("it's $(id) world\n");
  });

  it('a missing parameter, an unknown one, a NUL: errors that name them', () => {
    const t = parseTemplate('two', 'echo {{a}} {{b}}\n');
    expect(() => renderTemplate(t, {})).toThrow(new TemplateError('template two: missing parameters a, b'));
    expect(() => renderTemplate(t, { a: '1' })).toThrow(/missing parameter b$/);
    expect(() => renderTemplate(t, { a: '1', b: '2', c: '3' })).toThrow(/has no parameter c \(it has: a, b\)/);
    expect(() => renderTemplate(t, { a: '1', b: 'x\0y' })).toThrow(/NUL/);
  });

  it('refuses a placeholder inside double quotes, a bad header, a declared parameter nobody uses', () => {
    expect(() => parseTemplate('dq', '# it\'s fine here\necho "hello {{who}}"\n')).toThrow(/dq:2: a \{\{placeholder\}\} inside "…"/);
    expect(() => parseTemplate('sq', 'echo \'x\' {{who}} "$y"\n')).not.toThrow();
    expect(() => parseTemplate('hdr', '#% frobnicate 1\n')).toThrow(/hdr:1: unknown header/);
    // Asking for root is refused by name: there are no root tasks (docs/tasks.md).
    for (const h of ['privileged true', 'root', 'user root', 'sudo']) {
      expect(() => parseTemplate('priv', `#!/bin/sh\n#% ${h}\napt-get -y upgrade\n`)).toThrow(/priv:2: "#% \w+": tasks run as the node agent's unprivileged user; podboot has no root tasks/);
    }
    expect(() => parseTemplate('unused', '#% param x=1\necho hi\n')).toThrow(/parameter x is declared but no \{\{x\}\} uses it/);
    expect(() => parseTemplate('rule', '#% rule stdout fail (a)\\1\n')).toThrow(/rule:1: .*linear time/);
  });

  it('the library: shipped templates parse; an operator template replaces a shipped one; a broken one is listed with why', () => {
    const shipped = join(tmp, 'shipped');
    const mine = join(tmp, 'mine');
    execFileSync('mkdir', ['-p', shipped, mine]);
    writeFileSync(join(shipped, 'hello.sh'), 'echo shipped {{x}}\n');
    writeFileSync(join(mine, 'hello.sh'), 'echo mine {{x}}\n');
    writeFileSync(join(mine, 'broken.sh'), 'echo "{{x}}"\n');
    const lib = readLibrary([
      { dir: shipped, source: 'shipped' },
      { dir: mine, source: 'operator' },
    ]);
    expect(lib.map((e) => [e.name, e.source, !!e.template])).toEqual([
      ['broken', 'operator', false],
      ['hello', 'operator', true],
    ]);
    expect(lib[0]!.error).toMatch(/inside "…"/);
    const repo = readLibrary([{ dir: join(import.meta.dirname, '..', '..', '..', 'tasks'), source: 'shipped' }]);
    expect(repo.length).toBeGreaterThan(0);
    for (const e of repo) expect(e.error, e.name).toBeUndefined();
  });
});
