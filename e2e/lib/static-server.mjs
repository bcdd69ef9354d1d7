// Serves controlplane/static/ the way sfud does, so the page and the browser
// set-up can be checked without a server build.
import http from 'node:http';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { REPO } from './sfud.mjs';

const STATIC_DIR = path.join(REPO, 'controlplane', 'static');
const FILES = {
  '/': ['index.html', 'text/html; charset=utf-8'],
  '/index.html': ['index.html', 'text/html; charset=utf-8'],
  '/app.js': ['app.js', 'text/javascript; charset=utf-8'],
  '/style.css': ['style.css', 'text/css; charset=utf-8'],
};

/** Starts on 127.0.0.1:`port` (0 = any free port); returns { url, close() }. */
export async function serveStatic({ port = 0 } = {}) {
  const server = http.createServer(async (req, res) => {
    const entry = FILES[new URL(req.url, 'http://x').pathname];
    if (req.method !== 'GET' || !entry) {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found');
      return;
    }
    const body = await readFile(path.join(STATIC_DIR, entry[0]));
    res.writeHead(200, { 'Content-Type': entry[1] }).end(body);
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    close: () => new Promise((resolve) => { server.closeAllConnections?.(); server.close(() => resolve()); }),
  };
}
