// The coordinator's HTTP endpoint: GET /status (JSON snapshot of the job), /healthz, /readyz.
// It listens on a configurable address so a pod can expose it and a laptop can keep it local.
import { createServer, type Server } from 'node:http';

export interface StatusServer {
  readonly address: string;
  close(): Promise<void>;
}

export function parseListenAddress(addr: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(addr);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) {
    throw new Error(
      `invalid listen address "${addr}": expected HOST:PORT such as 127.0.0.1:8080 or 0.0.0.0:0 (port 0 picks a free one)`,
    );
  }
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

export interface StatusRoutes {
  status(): unknown;
  ready(): boolean;
  /** Extra routes (e.g. /metrics) answered as text. */
  extra?: Record<string, () => Promise<{ contentType: string; body: string }>>;
}

export async function startStatusServer(addr: string, routes: StatusRoutes): Promise<StatusServer> {
  const { host, port } = parseListenAddress(addr);
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const send = (code: number, type: string, body: string) => {
      res.writeHead(code, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(body);
    };
    if (req.method !== 'GET') return send(405, 'text/plain', 'only GET is supported\n');
    if (path === '/status') return send(200, 'application/json', JSON.stringify(routes.status(), null, 2) + '\n');
    if (path === '/healthz') return send(200, 'text/plain', 'ok\n');
    if (path === '/readyz')
      return routes.ready() ? send(200, 'text/plain', 'ready\n') : send(503, 'text/plain', 'not ready\n');
    const extra = routes.extra?.[path];
    if (extra) {
      extra().then(
        (r) => send(200, r.contentType, r.body),
        (err: Error) => send(500, 'text/plain', `${err.message}\n`),
      );
      return;
    }
    send(
      404,
      'text/plain',
      `no route ${path}; try /status, /healthz, /readyz${Object.keys(routes.extra ?? {})
        .map((k) => `, ${k}`)
        .join('')}\n`,
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new Error(
          `cannot listen on ${addr}: ${err.code === 'EADDRINUSE' ? 'the address is in use; pick another port' : err.message}`,
        ),
      ),
    );
    server.listen(port, host, () => resolve());
  });
  const a = server.address();
  const bound = typeof a === 'object' && a ? `${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}` : addr;
  return {
    address: bound,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
