/**
 * Build the demo into server/static (the server ships those files as they are).
 *
 *   node scripts/build.js          write server/static/{index.html, app.js, app.css, sw.js, fonts/, console.html}
 *   node scripts/build.js --check  rebuild in memory and fail if server/static differs
 *
 * The output is deterministic (same sources + same locked esbuild = same bytes), which is what
 * makes the --check comparison meaningful.
 */
import { createHash } from 'node:crypto'
import { readFile, writeFile, mkdir } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import path from 'node:path'
import * as esbuild from 'esbuild'

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)))
const outDir = path.resolve(root, '..', 'server', 'static')
const FONT_FILES = ['emoji.woff2', 'OFL.txt']

/** @returns {Promise<Map<string, Uint8Array>>} file name -> bytes */
async function buildFiles () {
  const result = await esbuild.build({
    entryPoints: [path.join(root, 'demo', 'main.js')],
    bundle: true,
    format: 'esm',
    target: ['es2020', 'chrome90', 'firefox90', 'safari15'],
    minify: true,
    legalComments: 'none',
    charset: 'utf8',
    write: false,
    logLevel: 'warning'
  })
  const appJs = result.outputFiles[0].contents
  const appCss = await readFile(path.join(root, 'demo', 'app.css'))
  const html = await readFile(path.join(root, 'demo', 'index.html'))
  const docPage = await buildDocPage()
  // The emoji font (a subset with just the reaction emoji, see demo/fonts/README.md) and its licence.
  const fonts = await Promise.all(FONT_FILES.map(async (name) => /** @type {[string, Uint8Array]} */ (
    [`fonts/${name}`, await readFile(path.join(root, 'demo', 'fonts', name))])))
  const hash = createHash('sha256').update(appJs).update(appCss).update(html)
  for (const [, bytes] of docPage) hash.update(bytes)
  for (const [, bytes] of fonts) hash.update(bytes)
  const buildId = hash.digest('hex').slice(0, 12)
  const sw = (await readFile(path.join(root, 'demo', 'sw.js'), 'utf8')).replace('__BUILD_ID__', buildId)
  return new Map([
    ['console.html', await buildConsole()],
    ['index.html', html],
    ['app.js', appJs],
    ['app.css', appCss],
    ['sw.js', new TextEncoder().encode(sw)],
    ...docPage,
    ...fonts
  ])
}

/**
 * The rich-text page (Tiptap over @hocuspocus/provider): its own bundle, so the chat does not
 * carry the editor.
 * @returns {Promise<Array<[string, Uint8Array]>>}
 */
async function buildDocPage () {
  const result = await esbuild.build({
    entryPoints: [path.join(root, 'demo', 'doc-main.js')],
    bundle: true,
    format: 'esm',
    target: ['es2020', 'chrome90', 'firefox90', 'safari15'],
    minify: true,
    legalComments: 'none',
    charset: 'utf8',
    write: false,
    logLevel: 'warning'
  })
  return [
    ['doc.html', await readFile(path.join(root, 'demo', 'doc.html'))],
    ['doc.js', result.outputFiles[0].contents],
    ['doc.css', await readFile(path.join(root, 'demo', 'doc.css'))]
  ]
}

/**
 * The operator console (console/) as one self-contained page: its script and styles inlined, so the server serves
 * it from one admin-only route and it needs nothing from the network but the server's own REST and SSE routes.
 * @returns {Promise<Uint8Array>}
 */
async function buildConsole () {
  const result = await esbuild.build({
    entryPoints: [path.join(root, 'console', 'main.js')],
    bundle: true,
    format: 'esm',
    target: ['es2020', 'chrome90', 'firefox90', 'safari15'],
    minify: true,
    legalComments: 'none',
    charset: 'utf8',
    write: false,
    logLevel: 'warning'
  })
  const js = result.outputFiles[0].text.replaceAll('</script', '<\\/script')
  const css = (await readFile(path.join(root, 'console', 'console.css'), 'utf8')).replaceAll('</style', '<\\/style')
  const page = (await readFile(path.join(root, 'console', 'index.html'), 'utf8'))
    .replace('/*CONSOLE_CSS*/', () => css)
    .replace('/*CONSOLE_JS*/', () => js)
  return new TextEncoder().encode(page)
}

/** @param {Map<string, Uint8Array>} files */
async function check (files) {
  const stale = []
  for (const [name, bytes] of files) {
    const target = path.join(outDir, name)
    if (!existsSync(target) || !Buffer.from(await readFile(target)).equals(Buffer.from(bytes))) stale.push(name)
  }
  if (stale.length > 0) {
    console.error(`server/static is out of date (${stale.join(', ')}): run npm run build in client_js/ and commit the result`)
    process.exit(1)
  }
  console.log('server/static is up to date')
}

/** @param {Map<string, Uint8Array>} files */
async function write (files) {
  for (const [name, bytes] of files) {
    await mkdir(path.dirname(path.join(outDir, name)), { recursive: true })
    await writeFile(path.join(outDir, name), bytes)
  }
  console.log(`wrote ${[...files.keys()].join(', ')} to ${path.relative(process.cwd(), outDir)}`)
}

const files = await buildFiles()
if (process.argv.includes('--check')) await check(files)
else await write(files)
