// Builds the editor into the Python package so `pip install .` serves it without Node.
// Usage: node build.mjs [outdir]   (default ../collab_server/static). Output is deterministic.
import { build } from 'esbuild'
import { copyFile, mkdir } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))
const outdir = path.resolve(process.argv[2] || path.join(here, '..', 'collab_server', 'static'))

const scripts = { bundle: true, target: ['es2020'], minify: true, legalComments: 'none', charset: 'utf8' }

await mkdir(outdir, { recursive: true })
await build({
  ...scripts,
  absWorkingDir: here,
  entryPoints: { app: 'src/main.js', sessions: 'src/sessions.js' },
  format: 'esm',
  outdir,
  logLevel: 'warning',
})
await build({
  absWorkingDir: here,
  entryPoints: { app: 'src/app.css' },
  bundle: true,
  minify: true,
  charset: 'utf8',
  outdir,
  logLevel: 'warning',
})
for (const page of ['index.html', 'sessions.html']) {
  await copyFile(path.join(here, page), path.join(outdir, page))
}
// The service worker: a classic script (served from `/`, its scope, by the server).
await build({ ...scripts, absWorkingDir: here, entryPoints: { offline: 'src/offline.js' }, format: 'iife', outdir, logLevel: 'warning' })
