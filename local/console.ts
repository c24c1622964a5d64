// The console at /console: one HTML page, its script bundled by esbuild from console/ on the first
// request and kept in memory (no build output on disk, none committed). The page and its script
// hold no data of the layer, so they are served without the bearer token; every API call the page
// makes carries it (XL_API_TOKEN), as any client's must.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..');

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>xl console</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/console/app.css">
<script type="module" src="/console/app.js"></script>
</head>
<body>
<noscript>The console needs JavaScript.</noscript>
</body>
</html>
`;

interface Bundle {
  js: string;
  css: string;
}

let bundle: Promise<Bundle> | undefined;

/** The console's script and stylesheet, built once per process. A failed build is retried on the next request. */
export function consoleBundle(): Promise<Bundle> {
  bundle ??= (async () => {
    // esbuild is a devDependency: `npm ci` installs it, and only the console needs it, so it loads here.
    const { build } = await import('esbuild');
    const result = await build({
      entryPoints: [join(ROOT, 'console/app.ts')],
      bundle: true,
      write: false,
      format: 'esm',
      platform: 'browser',
      target: 'es2022',
      minify: true,
      outdir: '/console',
      logLevel: 'silent',
    });
    const text = (ext: string) => result.outputFiles.find((f) => f.path.endsWith(ext))?.text ?? '';
    return { js: text('.js'), css: text('.css') };
  })().catch((err: unknown) => {
    bundle = undefined;
    throw err;
  });
  return bundle;
}

/** Serves GET /console, /console/app.js and /console/app.css; false for any other request. */
export async function serveConsole(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
  const path = new URL(req.url ?? '/', 'http://127.0.0.1').pathname;
  if (!/^\/console(\/|\/app\.(js|css))?$/.test(path)) return false;
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { type: 'validation', message: `${req.method} is not allowed on ${path}` } }));
    return true;
  }
  // The page cannot be framed, nor load anything but its own script and style, nor talk to anything but this layer.
  const headers = {
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  };
  if (!path.endsWith('.js') && !path.endsWith('.css')) {
    res.writeHead(200, { ...headers, 'content-type': 'text/html; charset=utf-8' });
    res.end(req.method === 'HEAD' ? undefined : PAGE);
    return true;
  }
  let built: Bundle;
  try {
    built = await consoleBundle();
  } catch (err) {
    res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
    res.end(`the console could not be built: ${(err as Error).message}`);
    return true;
  }
  const js = path.endsWith('.js');
  res.writeHead(200, { ...headers, 'content-type': js ? 'text/javascript; charset=utf-8' : 'text/css; charset=utf-8' });
  res.end(req.method === 'HEAD' ? undefined : js ? built.js : built.css);
  return true;
}
