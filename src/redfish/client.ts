// A small Redfish client for one job: boot a server once from an ISO its BMC
// mounts as virtual media (DMTF Redfish: VirtualMedia.InsertMedia, a one-time
// boot source override to Cd, ComputerSystem.Reset). Vendors differ in where
// the virtual media slots hang (under the System since schema 2021.1, under
// the Manager before) and in which slot takes a CD: the client follows the
// links the service gives and picks the slot whose MediaTypes lists CD or DVD.
// Basic authentication over the caller's transport; the password never
// leaves the Authorization header, and nothing here logs a header or a body.
import { Agent, request, type Dispatcher } from 'undici';

export interface RedfishTarget {
  /** base URL, https://bmc or http://bmc:port */
  address: string;
  username: string;
  password: string;
  /** PEM CA for the BMC's certificate; absent: the system's CAs */
  ca?: Buffer;
}

export interface RedfishStep {
  method: string;
  path: string;
  status: number;
}

export class RedfishError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

type Json = Record<string, unknown>;

const odataId = (v: unknown): string | undefined => (v && typeof v === 'object' && typeof (v as Json)['@odata.id'] === 'string' ? ((v as Json)['@odata.id'] as string) : undefined);

/** The first human-readable message of a Redfish error body, if any. */
function redfishMessage(body: string): string {
  try {
    const e = (JSON.parse(body) as { error?: { message?: string; '@Message.ExtendedInfo'?: { Message?: string }[] } }).error;
    return e?.['@Message.ExtendedInfo']?.[0]?.Message ?? e?.message ?? '';
  } catch {
    return body.slice(0, 200);
  }
}

export class RedfishClient {
  private readonly dispatcher: Dispatcher;
  private readonly auth: string;
  /** what was asked and answered, for the caller's log: method, path, status only */
  readonly steps: RedfishStep[] = [];

  constructor(private readonly target: RedfishTarget) {
    this.dispatcher = new Agent({ connect: target.ca ? { ca: target.ca } : {}, headersTimeout: 30_000, bodyTimeout: 30_000 });
    this.auth = `Basic ${Buffer.from(`${target.username}:${target.password}`).toString('base64')}`;
  }

  async close(): Promise<void> {
    await this.dispatcher.close();
  }

  private async call(method: 'GET' | 'POST' | 'PATCH', path: string, body?: Json): Promise<Json> {
    const url = new URL(path, this.target.address);
    const res = await request(url, {
      method,
      dispatcher: this.dispatcher,
      headers: { authorization: this.auth, accept: 'application/json', ...(body ? { 'content-type': 'application/json' } : {}), 'odata-version': '4.0' },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.body.text();
    this.steps.push({ method, path: url.pathname, status: res.statusCode });
    if (res.statusCode >= 400) throw new RedfishError(`${method} ${url.pathname}: HTTP ${res.statusCode}${redfishMessage(text) ? `: ${redfishMessage(text)}` : ''}`, res.statusCode);
    if (text.trim() === '') return {};
    try {
      return JSON.parse(text) as Json;
    } catch {
      throw new RedfishError(`${method} ${url.pathname}: the answer is not JSON`);
    }
  }

  /** The one ComputerSystem of the BMC (a BMC with several must be told which; none here has). */
  async system(): Promise<{ path: string; body: Json }> {
    const root = await this.call('GET', '/redfish/v1/');
    const systems = odataId(root.Systems);
    if (!systems) throw new RedfishError('the service root links no Systems collection');
    const members = ((await this.call('GET', systems)).Members ?? []) as unknown[];
    const paths = members.map(odataId).filter((p): p is string => p !== undefined);
    if (paths.length !== 1) throw new RedfishError(`${systems} has ${paths.length} systems; expected exactly one`);
    return { path: paths[0]!, body: await this.call('GET', paths[0]!) };
  }

  /** The virtual media slot that takes a CD: under the System, else under the Manager that manages it. */
  async cdSlot(system: Json): Promise<{ path: string; body: Json }> {
    const collections: string[] = [];
    const own = odataId(system.VirtualMedia);
    if (own) collections.push(own);
    for (const m of (((system.Links as Json | undefined)?.ManagedBy ?? []) as unknown[]).map(odataId)) {
      if (!m) continue;
      const vm = odataId((await this.call('GET', m)).VirtualMedia);
      if (vm) collections.push(vm);
    }
    for (const c of collections) {
      for (const slot of (((await this.call('GET', c)).Members ?? []) as unknown[]).map(odataId)) {
        if (!slot) continue;
        const body = await this.call('GET', slot);
        const types = (body.MediaTypes ?? []) as string[];
        if (types.some((t) => t === 'CD' || t === 'DVD')) return { path: slot, body };
      }
    }
    throw new RedfishError(`no virtual media slot takes a CD (looked in ${collections.join(', ') || 'no VirtualMedia collection'})`);
  }

  /**
   * Mounts `image` in the CD slot (ejecting what is there), sets a one-time
   * boot from it and resets (or powers on) the system.
   */
  async bootFromIso(image: string): Promise<{ system: string; slot: string; reset: string }> {
    const system = await this.system();
    const slot = await this.cdSlot(system.body);
    const actions = (slot.body.Actions ?? {}) as Record<string, { target?: string }>;
    if (slot.body.Inserted === true) {
      const eject = actions['#VirtualMedia.EjectMedia']?.target;
      if (eject) await this.call('POST', eject, {});
      else await this.call('PATCH', slot.path, { Image: null, Inserted: false });
    }
    const insert = actions['#VirtualMedia.InsertMedia']?.target;
    // Image alone: Inserted and WriteProtected default to true, and some BMCs refuse the action when they are
    // sent (sushy, the Ironic client, found SuperMicro X11 doing so). Older services mount by PATCHing the
    // slot instead (no InsertMedia action before VirtualMedia 1.2); some of those do not mount without Inserted.
    if (insert) await this.call('POST', insert, { Image: image });
    else await this.call('PATCH', slot.path, { Image: image, Inserted: true, WriteProtected: true });
    await this.call('PATCH', system.path, { Boot: { BootSourceOverrideTarget: 'Cd', BootSourceOverrideEnabled: 'Once' } });
    const resetAction = ((system.body.Actions ?? {}) as Record<string, { target?: string; 'ResetType@Redfish.AllowableValues'?: string[] }>)['#ComputerSystem.Reset'];
    if (!resetAction?.target) throw new RedfishError(`${system.path} offers no #ComputerSystem.Reset action`);
    const allowed = resetAction['ResetType@Redfish.AllowableValues'];
    const off = system.body.PowerState === 'Off';
    const wanted = off ? ['On', 'ForceOn'] : ['ForceRestart', 'PowerCycle', 'GracefulRestart'];
    const reset = allowed ? wanted.find((t) => allowed.includes(t)) : wanted[0];
    if (!reset) throw new RedfishError(`${system.path} allows reset types ${allowed!.join(', ')}; none of ${wanted.join(', ')}`);
    await this.call('POST', resetAction.target, { ResetType: reset });
    return { system: system.path, slot: slot.path, reset };
  }
}
