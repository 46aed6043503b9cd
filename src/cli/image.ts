// `--image`: a URL is sent as is; a local file is checked (type, size, dimensions: MiniMax's rules) and becomes a data URL.
import { open, stat } from 'node:fs/promises'
import { usageError } from './exit-codes.js'

// MiniMax's published limits for the subject reference image (see shared/provider-facts.md).
export const MAX_IMAGE_BYTES = 20 * 1024 * 1024
export const MIN_SHORT_SIDE_PX = 300
const MIN_ASPECT = 2 / 5
const MAX_ASPECT = 5 / 2
// Enough of the file to find the dimensions of PNG, WebP and nearly every JPEG (EXIF comes before SOF).
const HEAD_BYTES = 256 * 1024

export type ImageType = 'jpeg' | 'png' | 'webp'
export type LocalImage = { dataUrl: string, type: ImageType, bytes: number, width: number | null, height: number | null }

export function isRemoteImage (value: string): boolean {
  return /^https?:\/\//i.test(value) || /^data:image\//i.test(value)
}

export function sniffType (head: Buffer): ImageType | null {
  if (head.length >= 3 && head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff) return 'jpeg'
  if (head.length >= 8 && head.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) return 'png'
  if (head.length >= 12 && head.toString('latin1', 0, 4) === 'RIFF' && head.toString('latin1', 8, 12) === 'WEBP') return 'webp'
  return null
}

/** Width and height from the file's header, or null when the header does not say (then MiniMax decides). */
export function dimensions (type: ImageType, b: Buffer): { width: number, height: number } | null {
  if (type === 'png') return b.length >= 24 ? { width: b.readUInt32BE(16), height: b.readUInt32BE(20) } : null
  if (type === 'webp') return webpDimensions(b)
  return jpegDimensions(b)
}

function webpDimensions (b: Buffer): { width: number, height: number } | null {
  if (b.length < 30) return null
  const chunk = b.toString('latin1', 12, 16)
  if (chunk === 'VP8 ') return { width: b.readUInt16LE(26) & 0x3fff, height: b.readUInt16LE(28) & 0x3fff }
  if (chunk === 'VP8L') {
    const bits = b.readUInt32LE(21)
    return { width: (bits & 0x3fff) + 1, height: ((bits >> 14) & 0x3fff) + 1 }
  }
  if (chunk === 'VP8X') return { width: b.readUIntLE(24, 3) + 1, height: b.readUIntLE(27, 3) + 1 }
  return null
}

function jpegDimensions (b: Buffer): { width: number, height: number } | null {
  let i = 2
  while (i + 9 < b.length) {
    if (b[i] !== 0xff) return null
    const marker = b[i + 1]!
    if (marker === 0xff) { i++; continue } // fill byte
    // SOF0..SOF15 carry the frame size, except DHT (C4), JPG (C8) and DAC (CC).
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      return { height: b.readUInt16BE(i + 5), width: b.readUInt16BE(i + 7) }
    }
    i += 2 + b.readUInt16BE(i + 2)
  }
  return null
}

export async function readLocalImage (path: string): Promise<LocalImage> {
  let size: number
  try {
    const info = await stat(path)
    if (!info.isFile()) throw usageError(`--image ${path} is not a file`)
    size = info.size
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw usageError(`--image ${path}: no such file (give a path, or an http(s) URL)`)
    if ((err as NodeJS.ErrnoException).code !== undefined) throw usageError(`--image ${path}: ${(err as Error).message}`)
    throw err
  }
  if (size === 0) throw usageError(`--image ${path} is empty`)
  // Checked before reading: a wrong file of gigabytes is refused at once.
  if (size >= MAX_IMAGE_BYTES) throw usageError(`--image ${path} is ${size} bytes; MiniMax takes images under 20 MB`)
  const handle = await open(path, 'r')
  let data: Buffer
  try {
    data = await handle.readFile()
  } finally {
    await handle.close()
  }
  const type = sniffType(data)
  if (type === null) throw usageError(`--image ${path} is not a JPEG, PNG or WebP image (MiniMax takes only those)`)
  const dims = dimensions(type, data.subarray(0, HEAD_BYTES))
  if (dims !== null) {
    const short = Math.min(dims.width, dims.height)
    if (short <= MIN_SHORT_SIDE_PX) throw usageError(`--image ${path} is ${dims.width}x${dims.height}; MiniMax needs the short side over ${MIN_SHORT_SIDE_PX} px`)
    const aspect = dims.width / dims.height
    if (aspect < MIN_ASPECT || aspect > MAX_ASPECT) throw usageError(`--image ${path} is ${dims.width}x${dims.height}; MiniMax needs an aspect ratio between 2:5 and 5:2`)
  }
  return { dataUrl: `data:image/${type};base64,${data.toString('base64')}`, type, bytes: size, width: dims?.width ?? null, height: dims?.height ?? null }
}
