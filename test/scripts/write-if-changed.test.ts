// The build writes a file only when its bytes change, by rename (scripts/write-if-changed.ts); and the two bundlers run
// again on an unchanged tree touch nothing in dist/, which is what lets `npm start`'s prestart run beside a service.
import t from 'tap'
import { execFile } from 'node:child_process'
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { writeIfChanged } from '../../scripts/write-if-changed.js'
import { tempDir } from '../helper.js'

const ROOT = join(import.meta.dirname, '..', '..')
const DIST = join(ROOT, 'dist')
const run = promisify(execFile)

t.test('a file is written when it is new or its bytes differ, left alone when they are the same', async (t) => {
  const dir = tempDir(t)
  const path = join(dir, 'out.js')
  t.equal(writeIfChanged(path, 'one'), true, 'a new file is written')
  t.equal(readFileSync(path, 'utf8'), 'one')
  const before = statSync(path)
  t.equal(writeIfChanged(path, Buffer.from('one')), false, 'the same bytes are not written again')
  const after = statSync(path)
  t.same([after.ino, after.mtimeMs], [before.ino, before.mtimeMs], 'the file is untouched')
  t.equal(writeIfChanged(path, 'two'), true, 'other bytes are written')
  t.equal(readFileSync(path, 'utf8'), 'two')
  t.not(statSync(path).ino, before.ino, 'by rename: a reader holding the old file keeps reading it whole')
  t.same(readdirSync(dir), ['out.js'], 'no temporary file is left')
})

t.test('a file it cannot read for another reason than absence is an error, not an overwrite', async (t) => {
  const dir = tempDir(t)
  writeFileSync(join(dir, 'file'), 'x')
  t.throws(() => writeIfChanged(join(dir, 'file', 'below'), 'y'), { code: 'ENOTDIR' })
})

/** Every file under dist/ that the two bundlers write, with what would show a rewrite. */
function bundlerOutputs (): Map<string, string> {
  const files = new Map<string, string>()
  const record = (path: string) => { const stat = statSync(path); files.set(path, `${stat.ino}:${stat.mtimeMs}:${stat.size}`) }
  for (const name of ['server.js', 'server.js.map']) record(join(DIST, name))
  record(join(DIST, 'ui', 'index.html'))
  for (const name of readdirSync(join(DIST, 'ui', 'assets'))) record(join(DIST, 'ui', 'assets', name))
  return files
}

t.test('the bundlers run again on an unchanged tree leave dist/ as it was (a running service is never disturbed)', async (t) => {
  const bundle = async () => {
    for (const script of ['build-server.ts', 'build-ui.ts']) await run(process.execPath, ['--import', 'tsx', join(ROOT, 'scripts', script)], { cwd: ROOT })
  }
  await bundle() // brings dist/ up to date if this file runs alone after an edit
  const before = bundlerOutputs()
  await bundle()
  t.same(bundlerOutputs(), before, 'no file rewritten, added or removed')
})
