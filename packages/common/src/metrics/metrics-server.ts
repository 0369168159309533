// The HTTP endpoint of a worker or the coordinator: GET /metrics (Prometheus text format), /healthz
// (the process answers), /readyz (a worker is in a generation; the coordinator is training) and any
// JSON routes the caller adds (the coordinator's /status). Listens on HOST:PORT; port 0 picks a free one.
import { createServer } from 'node:http';
import type { Registry } from 'prom-client';
import { metricsText } from './exposition.js';

export interface MetricsServer {
  /** The bound HOST:PORT (the real port when 0 was asked for). */
  readonly address: string;
  readonly url: string;
  close(): Promise<void>;
}

export interface MetricsServerOptions {
  registry: Registry;
  ready: () => boolean;
  /** More routes, each answered with the JSON of what it returns. */
  json?: Record<string, () => unknown>;
}

export function parseHostPort(addr: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(addr);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) {
    throw new Error(
      `invalid listen address "${addr}": expected HOST:PORT such as 127.0.0.1:9464 or 0.0.0.0:0 (port 0 picks a free one)`,
    );
  }
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

export async function startMetricsServer(addr: string, options: MetricsServerOptions): Promise<MetricsServer> {
  const { host, port } = parseHostPort(addr);
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const send = (code: number, type: string, body: string) => {
      res.writeHead(code, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(body);
    };
    if (req.method !== 'GET') return send(405, 'text/plain', 'only GET is supported\n');
    if (path === '/healthz') return send(200, 'text/plain', 'ok\n');
    if (path === '/readyz')
      return options.ready() ? send(200, 'text/plain', 'ready\n') : send(503, 'text/plain', 'not ready\n');
    const json = options.json?.[path];
    if (json) return send(200, 'application/json', JSON.stringify(json(), null, 2) + '\n');
    if (path === '/metrics') {
      metricsText(options.registry).then(
        (m) => send(200, m.contentType, m.body),
        (err: Error) => send(500, 'text/plain', `${err.message}\n`),
      );
      return;
    }
    const routes = ['/metrics', '/healthz', '/readyz', ...Object.keys(options.json ?? {})];
    send(404, 'text/plain', `no route ${path}; try ${routes.join(', ')}\n`);
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
  const address = typeof a === 'object' && a ? `${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}` : addr;
  return {
    address,
    url: `http://${address}/metrics`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
