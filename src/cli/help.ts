// What the CLI prints when it was not given one whole command: the overview,
// a group's own help (`podboot pods`), and a "did you mean" for a typo.
// Summaries live in the command modules, so each text loads only the modules
// it lists: the overview every one, a group's help that group's.
import { editDistance } from '../config/suggest.js';
import { type CommandEntry, commands, groupNotes } from './registry.js';

async function summaryLines(entries: CommandEntry[]): Promise<string[]> {
  const loaded = await Promise.all(entries.map(async (c) => ({ name: c.name.join(' '), summary: (await c.load()).summary })));
  const width = Math.max(...loaded.map((c) => c.name.length));
  return loaded.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`);
}

export async function overview(): Promise<string> {
  return [
    'podboot: bare-metal provisioning appliance',
    '',
    'usage: podboot <command> [options]   (podboot <command> --help for its options; podboot --version)',
    '',
    'commands:',
    ...(await summaryLines(commands)),
    '',
    'exit codes: 0 ok, 1 the command found a problem, 2 wrong usage',
  ].join('\n');
}

/** The groups: first words shared by commands of two or more words (`pods`, `ca`, `pod`). */
export function groupNames(): string[] {
  return [...new Set(commands.filter((c) => c.name.length > 1).map((c) => c.name[0]!))];
}

export function isGroup(word: string | undefined): boolean {
  return word !== undefined && groupNames().includes(word);
}

export async function groupHelp(group: string): Promise<string> {
  const members = commands.filter((c) => c.name.length > 1 && c.name[0] === group);
  const note = groupNotes[group];
  return [
    `usage: podboot ${group} <subcommand> [options]   (podboot ${group} <subcommand> --help for its options)`,
    '',
    'subcommands:',
    ...(await summaryLines(members)),
    ...(note ? ['', note] : []),
  ].join('\n');
}

/**
 * The command (or group) the words most likely meant: compared whole, words
 * for words (`pod list` → `pods list`, `nods` → `nodes`), at most 2 edits and
 * fewer edits than the candidate's last word has letters, so a short word
 * like `ca` is not offered for anything two letters long. Ties go to the
 * longer common start (`nods`: `nodes`, not `pods`). When the first word is
 * a group, it is not offered back (`pods frobnicate` gets no `pod`).
 */
export function didYouMean(argv: string[]): string | undefined {
  const words = argv.filter((w) => !w.startsWith('-'));
  const singles = isGroup(words[0]) ? [] : groupNames().map((g) => [g]);
  const candidates = [...commands.map((c) => c.name), ...singles];
  let best: { name: string; d: number; common: number } | undefined;
  for (const name of candidates) {
    if (words.length < name.length || (isGroup(words[0]) && name.length === 1)) continue;
    const typed = words.slice(0, name.length).join(' ').toLowerCase();
    const wanted = name.join(' ');
    const d = editDistance(typed, wanted);
    if (d === 0 || d > 2 || d >= name.at(-1)!.length) continue;
    const common = commonStart(typed, wanted);
    if (!best || d < best.d || (d === best.d && common > best.common)) best = { name: wanted, d, common };
  }
  return best?.name;
}

function commonStart(a: string, b: string): number {
  let i = 0;
  while (i < a.length && a[i] === b[i]) i++;
  return i;
}
