// Kickstarts are rendered per server from templates in kickstart/. A value
// goes in through `{{name}}` (as is: only for values podboot made itself,
// such as URLs and tokens) or `{{name|sh}}` (single-quoted for POSIX sh, so a
// hostname from the inventory cannot run commands on the installer), or
// `{{name|pem}}` (a PEM certificate kept as lines; anything else renders empty).
// Pure: templates and values in, text out.

export const KICKSTART_VALUES = [
  'hostname',
  'mac',
  'pod',
  'server',
  'httpsPort',
  'baseUrl',
  'token',
  'nodeToken',
  'imageName',
  'imageVersion',
  'imageSha256',
  'disk',
  'rootCa',
  'rootPasswordHash',
  'repoUrl',
  'heartbeatSeconds',
] as const;
export type KickstartValues = Record<(typeof KICKSTART_VALUES)[number], string>;

const PLACEHOLDER = /\{\{\s*([A-Za-z0-9]+)\s*(?:\|\s*(sh|pem))?\s*\}\}/g;

const PEM = /^\s*(-----BEGIN CERTIFICATE-----\r?\n[A-Za-z0-9+/=\r\n]+-----END CERTIFICATE-----\s*)+$/;

export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** Names a template uses that podboot does not provide: checked when the template is loaded, not when a server asks. */
export function unknownPlaceholders(template: string): string[] {
  const known = new Set<string>(KICKSTART_VALUES);
  return [...template.matchAll(PLACEHOLDER)].map((m) => m[1]!).filter((n) => !known.has(n));
}

export function renderKickstart(template: string, values: KickstartValues): string {
  return template.replace(PLACEHOLDER, (whole, name: string, filter: string | undefined) => {
    if (!(name in values)) return whole;
    const v = values[name as keyof KickstartValues];
    // Unquoted values must not be able to end a line or a directive.
    if (filter === 'sh') return shellQuote(v);
    if (filter === 'pem') return PEM.test(v) ? v.trim() : '';
    return v.replace(/[^A-Za-z0-9._:/@+=$-]/g, '');
  });
}
