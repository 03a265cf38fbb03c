/**
 * Regenerate demo/fonts/emoji.woff2: the reaction emoji (REACTIONS in demo/model.js) cut out of
 * Noto Color Emoji (SIL Open Font License 1.1, demo/fonts/OFL.txt).
 *
 *   npm install --no-save @fontsource/noto-color-emoji@5.3.2
 *   pip install fonttools brotli lxml        # provides pyftsubset
 *   node scripts/subset-emoji-font.js [SOURCE.woff2]
 *
 * The source is the package's "emoji" file, which carries COLRv1 (Chromium, Firefox) and
 * OpenType-SVG (Safari, Firefox) glyphs. After changing REACTIONS, rerun this, update the
 * unicode-range in demo/app.css (a unit test compares them) and `npm run build`.
 */
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import path from 'node:path'
import { REACTIONS } from '../demo/model.js'

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)))
const source = process.argv[2] ??
  path.join(root, 'node_modules', '@fontsource', 'noto-color-emoji', 'files', 'noto-color-emoji-emoji-400-normal.woff2')
const codes = [...new Set(REACTIONS.flatMap((emoji) => [...emoji].map((char) => /** @type {number} */ (char.codePointAt(0)))))]
  .sort((a, b) => a - b)
  .map((code) => `U+${code.toString(16).toUpperCase().padStart(4, '0')}`)
const output = path.join(root, 'demo', 'fonts', 'emoji.woff2')
execFileSync('pyftsubset', [source, `--unicodes=${codes.join(',')}`, '--layout-features=*', '--flavor=woff2', `--output-file=${output}`], { stdio: 'inherit' })
console.log(`wrote ${path.relative(process.cwd(), output)}; unicode-range: ${codes.join(', ')}`)
