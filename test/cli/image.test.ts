// --image: type sniffing, dimensions from the header, and MiniMax's rules checked before anything is sent.
import t from 'tap'
import { truncateSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { tempDir } from '../helper.js'
import { CliError, EXIT } from '../../src/cli/exit-codes.js'
import { dimensions, isRemoteImage, MAX_IMAGE_BYTES, readLocalImage, sniffType } from '../../src/cli/image.js'
import { SUBJECT_PNG } from './processes.js'

function png (width: number, height: number): Buffer {
  const b = Buffer.alloc(64)
  Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]).copy(b)
  b.writeUInt32BE(13, 8)
  b.write('IHDR', 12, 'latin1')
  b.writeUInt32BE(width, 16)
  b.writeUInt32BE(height, 20)
  return b
}

function jpeg (width: number, height: number): Buffer {
  // SOI, an APP0 segment of 16 bytes, then SOF0 with the frame size.
  const app0 = Buffer.concat([Buffer.from([0xff, 0xe0, 0x00, 0x10]), Buffer.alloc(14)])
  const sof = Buffer.from([0xff, 0xc0, 0x00, 0x11, 0x08, height >> 8, height & 0xff, width >> 8, width & 0xff, 0x03, 0, 0, 0, 0, 0, 0, 0, 0, 0])
  return Buffer.concat([Buffer.from([0xff, 0xd8]), app0, sof, Buffer.alloc(32)])
}

function webpVp8x (width: number, height: number): Buffer {
  const b = Buffer.alloc(40)
  b.write('RIFF', 0, 'latin1')
  b.writeUInt32LE(32, 4)
  b.write('WEBP', 8, 'latin1')
  b.write('VP8X', 12, 'latin1')
  b.writeUIntLE(width - 1, 24, 3)
  b.writeUIntLE(height - 1, 27, 3)
  return b
}

async function usageErrorOf (promise: Promise<unknown>): Promise<CliError> {
  const err = await promise.then(() => null, (e: unknown) => e)
  if (!(err instanceof CliError)) throw new Error(`expected a CliError, got ${String(err)}`)
  return err
}

t.test('types are sniffed from the bytes, not the file name', async t => {
  t.equal(sniffType(png(1, 1)), 'png')
  t.equal(sniffType(jpeg(1, 1)), 'jpeg')
  t.equal(sniffType(webpVp8x(1, 1)), 'webp')
  t.equal(sniffType(Buffer.from('GIF89a')), null)
  t.equal(sniffType(Buffer.alloc(0)), null)
})

t.test('dimensions come from each format\'s header', async t => {
  t.same(dimensions('png', png(640, 480)), { width: 640, height: 480 })
  t.same(dimensions('jpeg', jpeg(1920, 1080)), { width: 1920, height: 1080 })
  t.same(dimensions('webp', webpVp8x(800, 600)), { width: 800, height: 600 })
  t.equal(dimensions('jpeg', Buffer.from([0xff, 0xd8, 0x00])), null, 'a header without SOF says nothing')
})

t.test('a local file becomes a data URL after MiniMax\'s checks', async t => {
  const ok = await readLocalImage(SUBJECT_PNG)
  t.match(ok, { type: 'png', width: 512, height: 512 })
  t.match(ok.dataUrl, /^data:image\/png;base64,iVBORw0KGgo/)

  const dir = tempDir(t)
  const write = (name: string, bytes: Buffer) => {
    const path = join(dir, name)
    writeFileSync(path, bytes)
    return path
  }
  t.match((await readLocalImage(write('wide.jpg', jpeg(1000, 400)))), { type: 'jpeg', width: 1000, height: 400 }, '5:2 is allowed')
  const cases: Array<[string, Buffer, RegExp]> = [
    ['small.png', png(300, 600), /short side over 300 px/],
    ['panorama.png', png(2000, 700), /aspect ratio between 2:5 and 5:2/],
    ['tall.webp', webpVp8x(400, 1100), /aspect ratio/],
    ['face.png', Buffer.from('not really a png'), /not a JPEG, PNG or WebP/],
    ['empty.png', Buffer.alloc(0), /is empty/]
  ]
  for (const [name, bytes, message] of cases) {
    const err = await usageErrorOf(readLocalImage(write(name, bytes)))
    t.equal(err.exitCode, EXIT.usage, name)
    t.match(err.message, message, name)
  }
  const huge = write('huge.png', png(1000, 1000))
  truncateSync(huge, MAX_IMAGE_BYTES) // sparse: no 20 MB written
  t.match((await usageErrorOf(readLocalImage(huge))).message, /under 20 MB/)
  t.match((await usageErrorOf(readLocalImage(join(dir, 'missing.png')))).message, /no such file/)
  t.match((await usageErrorOf(readLocalImage(dir))).message, /is not a file/)
})

t.test('URLs and data URLs are sent as they are', async t => {
  t.ok(isRemoteImage('https://example.com/face.jpg'))
  t.ok(isRemoteImage('HTTP://example.com/face.jpg'))
  t.ok(isRemoteImage('data:image/png;base64,AAAA'))
  t.notOk(isRemoteImage('face.jpg'))
  t.notOk(isRemoteImage('./https/face.jpg'))
})
