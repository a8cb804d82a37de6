// A mock BMC for tests: a small Redfish service (service root, one System,
// one Manager with a CD and a USB-stick virtual media slot, sessions for
// clients that want them) that drives a QEMU VM over QMP the way a real BMC
// drives its server: InsertMedia fetches the image and changes the VM's CD
// (blockdev-change-medium), a one-time boot override to Cd moves the CD first
// in the VM's boot order (its bootindex, read by the firmware at the next
// reset) and back once that reset happened, and Reset is system_reset (or
// `cont` for a VM still powered off, started with -S). Without QMP it only
// records. Named for what it is: a vendor BMC cannot run here.
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect, type Socket } from 'node:net';

export interface RecordedRequest {
  method: string;
  path: string;
  body: unknown;
  /** 'basic', 'session' or 'none' */
  auth: string;
}

export interface MockBmcOptions {
  username: string;
  password: string;
  /** QMP unix socket of the VM this BMC manages */
  qmpSocket?: string;
  /** qdev id of the VM's CD drive and the QOM paths whose bootindex the override swaps */
  cdId?: string;
  cdQomPath?: string;
  /** fetches an image URL to a local file QEMU can open, as a BMC streams it */
  fetchImage?: (url: string) => Promise<string>;
}

/** A minimal QMP client: one command at a time, events kept. */
export class Qmp {
  private sock?: Socket;
  private buf = '';
  private waiting?: { resolve: (v: unknown) => void; reject: (e: Error) => void };
  readonly events: { event: string; at: number }[] = [];

  constructor(private readonly path: string) {}

  async open(): Promise<void> {
    this.sock = connect(this.path);
    await new Promise<void>((resolve, reject) => {
      this.sock!.once('connect', resolve);
      this.sock!.once('error', reject);
    });
    let greeted: () => void;
    const greeting = new Promise<void>((r) => {
      greeted = r;
    });
    this.sock.on('data', (d) => {
      this.buf += d.toString();
      let nl = this.buf.indexOf('\n');
      while (nl >= 0) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        nl = this.buf.indexOf('\n');
        if (!line.trim()) continue;
        const msg = JSON.parse(line) as { QMP?: unknown; event?: string; return?: unknown; error?: { desc: string } };
        if (msg.QMP) greeted();
        else if (msg.event) this.events.push({ event: msg.event, at: Date.now() });
        else if (this.waiting) {
          const w = this.waiting;
          this.waiting = undefined;
          if (msg.error) w.reject(new Error(`QMP: ${msg.error.desc}`));
          else w.resolve(msg.return);
        }
      }
    });
    await greeting;
    await this.execute('qmp_capabilities');
  }

  execute(command: string, args?: Record<string, unknown>): Promise<unknown> {
    if (this.waiting) throw new Error('QMP: one command at a time');
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
      this.sock!.write(JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}) }) + '\n');
    });
  }

  async waitEvent(name: string, since: number, timeoutMs = 10_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      if (this.events.some((e) => e.event === name && e.at >= since)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`QMP: no ${name} event within ${timeoutMs} ms`);
  }

  close(): void {
    this.sock?.destroy();
  }
}

const SYSTEM = '/redfish/v1/Systems/1';
const MANAGER = '/redfish/v1/Managers/1';
const CD = `${MANAGER}/VirtualMedia/Cd1`;
const USB = `${MANAGER}/VirtualMedia/Usb1`;

export class MockBmc {
  readonly requests: RecordedRequest[] = [];
  readonly state = {
    power: 'Off' as 'On' | 'Off',
    image: null as string | null,
    inserted: false,
    override: { target: 'None', enabled: 'Disabled' },
    resets: [] as string[],
  };
  private server?: Server;
  private qmp?: Qmp;
  private readonly sessions = new Set<string>();

  constructor(private readonly o: MockBmcOptions) {}

  async start(host = '127.0.0.1', port = 0): Promise<string> {
    if (this.o.qmpSocket) {
      this.qmp = new Qmp(this.o.qmpSocket);
      await this.qmp.open();
      const status = (await this.qmp.execute('query-status')) as { running: boolean };
      this.state.power = status.running ? 'On' : 'Off';
    }
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((r) => this.server!.listen(port, host, r));
    const a = this.server.address() as AddressInfo;
    return `http://${host}:${a.port}`;
  }

  async stop(): Promise<void> {
    this.qmp?.close();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }

  /** mutating requests only (what a client asked the BMC to do), for comparing clients */
  actions(): RecordedRequest[] {
    return this.requests.filter((r) => r.method !== 'GET' && !r.path.startsWith('/redfish/v1/SessionService'));
  }

  private authOf(req: IncomingMessage): string {
    const basic = `Basic ${Buffer.from(`${this.o.username}:${this.o.password}`).toString('base64')}`;
    if (req.headers.authorization === basic) return 'basic';
    const t = req.headers['x-auth-token'];
    if (typeof t === 'string' && this.sessions.has(t)) return 'session';
    return 'none';
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString();
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      return this.reply(res, 400, { error: { message: 'body is not JSON' } });
    }
    const path = new URL(req.url ?? '/', 'http://bmc').pathname.replace(/\/$/, '') || '/';
    const method = req.method ?? 'GET';
    const auth = this.authOf(req);
    this.requests.push({ method, path, body, auth });
    try {
      if (path === '/redfish' && method === 'GET') return this.reply(res, 200, { v1: '/redfish/v1/' });
      if (path === '/redfish/v1' && method === 'GET') return this.reply(res, 200, this.root());
      if (path === '/redfish/v1/SessionService/Sessions' && method === 'POST') {
        const b = body as { UserName?: string; Password?: string };
        if (b?.UserName !== this.o.username || b?.Password !== this.o.password) return this.reply(res, 401, { error: { message: 'bad credentials' } });
        const token = randomBytes(16).toString('hex');
        this.sessions.add(token);
        res.setHeader('x-auth-token', token);
        res.setHeader('location', `/redfish/v1/SessionService/Sessions/${token}`);
        return this.reply(res, 201, { '@odata.id': `/redfish/v1/SessionService/Sessions/${token}`, Id: token, UserName: b.UserName });
      }
      if (path.startsWith('/redfish/v1/SessionService/Sessions/') && method === 'DELETE') {
        this.sessions.delete(path.slice(path.lastIndexOf('/') + 1));
        return this.reply(res, 204);
      }
      if (auth === 'none') return this.reply(res, 401, { error: { message: 'authentication required' } });
      return await this.resource(method, path, body, res);
    } catch (err) {
      return this.reply(res, 500, { error: { message: (err as Error).message } });
    }
  }

  private async resource(method: string, path: string, body: unknown, res: ServerResponse): Promise<void> {
    const get = method === 'GET';
    if (get && path === '/redfish/v1/SessionService') return this.reply(res, 200, this.sessionService());
    if (get && path === '/redfish/v1/Systems') return this.reply(res, 200, collection('/redfish/v1/Systems', 'Computer System Collection', [SYSTEM]));
    if (get && path === '/redfish/v1/Managers') return this.reply(res, 200, collection('/redfish/v1/Managers', 'Manager Collection', [MANAGER]));
    if (get && path === SYSTEM) return this.reply(res, 200, this.system());
    if (get && path === MANAGER) return this.reply(res, 200, this.manager());
    if (get && path === `${MANAGER}/VirtualMedia`) return this.reply(res, 200, collection(`${MANAGER}/VirtualMedia`, 'Virtual Media Services', [USB, CD]));
    if (get && path === CD) return this.reply(res, 200, this.slot(CD, 'Cd1', ['CD', 'DVD'], this.state.image, this.state.inserted));
    if (get && path === USB) return this.reply(res, 200, this.slot(USB, 'Usb1', ['USBStick'], null, false));
    if (method === 'PATCH' && path === SYSTEM) {
      const boot = (body as { Boot?: { BootSourceOverrideTarget?: string; BootSourceOverrideEnabled?: string } })?.Boot;
      if (!boot) return this.reply(res, 400, { error: { message: 'only Boot can be changed' } });
      if (boot.BootSourceOverrideTarget !== undefined) {
        if (!['None', 'Pxe', 'Cd', 'Hdd'].includes(boot.BootSourceOverrideTarget)) return this.reply(res, 400, { error: { message: `target ${boot.BootSourceOverrideTarget} not allowed` } });
        this.state.override.target = boot.BootSourceOverrideTarget;
      }
      if (boot.BootSourceOverrideEnabled !== undefined) this.state.override.enabled = boot.BootSourceOverrideEnabled;
      return this.reply(res, 204);
    }
    if (method === 'POST' && path === `${CD}/Actions/VirtualMedia.InsertMedia`) {
      const b = body as { Image?: string; Inserted?: boolean };
      if (typeof b?.Image !== 'string') return this.reply(res, 400, { error: { message: 'Image is required' } });
      if (this.state.inserted) return this.reply(res, 409, { error: { message: 'a medium is inserted: eject it first' } });
      if (this.qmp && this.o.fetchImage) {
        const file = await this.o.fetchImage(b.Image);
        await this.qmp.execute('blockdev-change-medium', { id: this.o.cdId ?? 'cd0', filename: file, format: 'raw', 'read-only-mode': 'read-only' });
      }
      this.state.image = b.Image;
      this.state.inserted = b.Inserted ?? true;
      return this.reply(res, 204);
    }
    if (method === 'POST' && path === `${CD}/Actions/VirtualMedia.EjectMedia`) {
      if (this.qmp) await this.qmp.execute('eject', { id: this.o.cdId ?? 'cd0', force: true });
      this.state.image = null;
      this.state.inserted = false;
      return this.reply(res, 204);
    }
    if (method === 'POST' && path === `${SYSTEM}/Actions/ComputerSystem.Reset`) {
      const type = (body as { ResetType?: string })?.ResetType;
      if (!type || !RESET_TYPES.includes(type)) return this.reply(res, 400, { error: { message: `ResetType ${type} not allowed` } });
      await this.reset(type);
      return this.reply(res, 204);
    }
    return this.reply(res, get ? 404 : 405, { error: { message: `${method} ${path} not supported by this mock` } });
  }

  private async reset(type: string): Promise<void> {
    this.state.resets.push(type);
    if (type === 'ForceOff') {
      if (this.qmp) await this.qmp.execute('stop');
      this.state.power = 'Off';
      return;
    }
    const once = this.state.override.enabled === 'Once' && this.state.override.target === 'Cd';
    if (this.qmp) {
      const cd = this.o.cdQomPath ?? '/machine/peripheral/cddev';
      if (once) await this.qmp.execute('qom-set', { path: cd, property: 'bootindex', value: 0 });
      const since = Date.now();
      await this.qmp.execute('system_reset');
      // The firmware reads the boot order at reset: once that happened, the override is spent.
      await this.qmp.waitEvent('RESET', since);
      if (once) await this.qmp.execute('qom-set', { path: cd, property: 'bootindex', value: 9 });
      if (this.state.power === 'Off') await this.qmp.execute('cont');
    }
    this.state.power = 'On';
    if (once) this.state.override = { target: 'None', enabled: 'Disabled' };
  }

  private reply(res: ServerResponse, status: number, body?: unknown): void {
    if (body === undefined) {
      res.writeHead(status);
      res.end();
      return;
    }
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'odata-version': '4.0' });
    res.end(text);
  }

  private root() {
    return {
      '@odata.id': '/redfish/v1/',
      '@odata.type': '#ServiceRoot.v1_5_0.ServiceRoot',
      Id: 'RootService',
      Name: 'podboot mock BMC',
      RedfishVersion: '1.6.0',
      UUID: '00000000-0000-0000-0000-00000000b0c0',
      Systems: { '@odata.id': '/redfish/v1/Systems' },
      Managers: { '@odata.id': '/redfish/v1/Managers' },
      SessionService: { '@odata.id': '/redfish/v1/SessionService' },
      Links: { Sessions: { '@odata.id': '/redfish/v1/SessionService/Sessions' } },
    };
  }

  private sessionService() {
    return {
      '@odata.id': '/redfish/v1/SessionService',
      '@odata.type': '#SessionService.v1_1_3.SessionService',
      Id: 'SessionService',
      Name: 'Session Service',
      ServiceEnabled: true,
      SessionTimeout: 600,
      Sessions: { '@odata.id': '/redfish/v1/SessionService/Sessions' },
    };
  }

  private system() {
    return {
      '@odata.id': SYSTEM,
      '@odata.type': '#ComputerSystem.v1_10_0.ComputerSystem',
      Id: '1',
      Name: 'QEMU VM',
      SystemType: 'Physical',
      PowerState: this.state.power,
      Status: { State: 'Enabled', Health: 'OK' },
      Boot: {
        BootSourceOverrideTarget: this.state.override.target,
        BootSourceOverrideEnabled: this.state.override.enabled,
        BootSourceOverrideMode: 'Legacy',
        'BootSourceOverrideTarget@Redfish.AllowableValues': ['None', 'Pxe', 'Cd', 'Hdd'],
      },
      Links: { ManagedBy: [{ '@odata.id': MANAGER }] },
      Actions: {
        '#ComputerSystem.Reset': {
          target: `${SYSTEM}/Actions/ComputerSystem.Reset`,
          'ResetType@Redfish.AllowableValues': RESET_TYPES,
        },
      },
    };
  }

  private manager() {
    return {
      '@odata.id': MANAGER,
      '@odata.type': '#Manager.v1_5_0.Manager',
      Id: '1',
      Name: 'mock BMC',
      ManagerType: 'BMC',
      Status: { State: 'Enabled', Health: 'OK' },
      VirtualMedia: { '@odata.id': `${MANAGER}/VirtualMedia` },
      Links: { ManagerForServers: [{ '@odata.id': SYSTEM }] },
    };
  }

  private slot(path: string, id: string, types: string[], image: string | null, inserted: boolean) {
    return {
      '@odata.id': path,
      '@odata.type': '#VirtualMedia.v1_3_0.VirtualMedia',
      Id: id,
      Name: `Virtual ${id}`,
      MediaTypes: types,
      Image: image,
      ImageName: image ? (image.split('?')[0]!.split('/').pop() ?? null) : null,
      Inserted: inserted,
      WriteProtected: true,
      ConnectedVia: inserted ? 'URI' : 'NotConnected',
      Actions: {
        '#VirtualMedia.InsertMedia': { target: `${path}/Actions/VirtualMedia.InsertMedia` },
        '#VirtualMedia.EjectMedia': { target: `${path}/Actions/VirtualMedia.EjectMedia` },
      },
    };
  }
}

const RESET_TYPES = ['On', 'ForceOff', 'ForceRestart', 'GracefulRestart', 'PowerCycle'];

function collection(path: string, name: string, members: string[]) {
  return { '@odata.id': path, Name: name, 'Members@odata.count': members.length, Members: members.map((m) => ({ '@odata.id': m })) };
}
