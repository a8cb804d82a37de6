// Log rules: matched line by line with V8's linear-time engine; a pattern
// that engine refuses is refused at submit, with a message that says why.
import { describe, expect, it } from 'vitest';
import { compilePattern, compileRules, ensureLinearEngine, matchLine, parseRule, parseRuleText, RuleError } from '../../../src/tasks/rules.js';

describe('log rules', () => {
  it('the linear engine is on, also when the process was started without the flag', () => {
    ensureLinearEngine();
    const flag = 'l';
    expect(new RegExp('a', flag).flags).toContain(flag);
  });

  it('refuses backreferences and lookaround with a clear error; a bad pattern names itself', () => {
    for (const p of ['(a)\\1', '(?<=a)b', '(?<!a)b', 'a(?=b)', 'a(?!b)']) {
      expect(() => compilePattern(p), p).toThrow(RuleError);
      expect(() => compilePattern(p), p).toThrow(/cannot be matched in linear time \(no backreferences, lookahead or lookbehind\)/);
    }
    expect(() => compilePattern('(unclosed')).toThrow(/pattern "\(unclosed": /);
    expect(() => compilePattern('')).toThrow(/empty pattern/);
    expect(() => compilePattern('x'.repeat(513))).toThrow(/over 512/);
  });

  it('a catastrophic pattern for a backtracking engine ends at once on a hostile line', () => {
    const re = compilePattern('(a+)+$');
    // With backtracking this is 2^5000 steps; the linear engine answers straight away.
    expect(re.test(`${'a'.repeat(5000)}!`)).toBe(false);
    expect(re.test('aaaa')).toBe(true);
  });

  it('matches per stream: fail, capture (first group, or the whole match), webhook', () => {
    const rules = compileRules([
      parseRuleText('stdout fail ERROR'),
      parseRuleText('stderr capture=version ^version (\\S+)$'),
      parseRuleText('stdout capture=word [a-z]+ing'),
      parseRuleText('stdout webhook=http://127.0.0.1:9/hook disk (full|gone)'),
    ]);
    expect(matchLine(rules, 'stdout', 'all fine').map((h) => h.rule.action.kind)).toEqual([]);
    expect(matchLine(rules, 'stderr', 'ERROR on stderr')).toEqual([]);
    expect(matchLine(rules, 'stdout', 'ERROR: disk full').map((h) => h.rule.action.kind)).toEqual(['fail', 'webhook']);
    expect(matchLine(rules, 'stderr', 'version 1.2.3')[0]!.value).toBe('1.2.3');
    expect(matchLine(rules, 'stdout', 'now running')[0]!.value).toBe('running');
  });

  it('the API form: stream, action and its argument are checked', () => {
    expect(parseRule({ stream: 'stdout', pattern: 'x', action: 'fail' })).toEqual({ stream: 'stdout', pattern: 'x', action: { kind: 'fail' } });
    expect(() => parseRule({ stream: 'stdin', pattern: 'x', action: 'fail' })).toThrow(/stdout or stderr/);
    expect(() => parseRule({ stream: 'stdout', pattern: 'x', action: 'shout' })).toThrow(/fail, webhook or capture/);
    expect(() => parseRule({ stream: 'stdout', pattern: 'x', action: 'webhook', url: 'file:///etc/passwd' })).toThrow(/http or https only/);
    expect(() => parseRule({ stream: 'stdout', pattern: 'x', action: 'webhook', url: 'https://u:p@h/x' })).toThrow(/no user or password/);
    expect(() => parseRule({ stream: 'stdout', pattern: 'x', action: 'capture', name: 'a b' })).toThrow(/needs a name/);
    expect(() => parseRuleText('stdout fail')).toThrow(/expected STREAM ACTION PATTERN/);
    expect(parseRuleText('stdout fail two words')).toMatchObject({ pattern: 'two words' });
  });
});
