// Opaque page cursors: the position of the last item of the previous page, base64url so that callers do not parse it.
import { errors } from '../errors.js'

export function pageCursor (kind: string) {
  const pattern = new RegExp(`^${kind}:(\\d{1,15})$`)
  return {
    encode: (seq: number): string => Buffer.from(`${kind}:${seq}`).toString('base64url'),
    decode (cursor: string): number {
      const match = pattern.exec(Buffer.from(cursor, 'base64url').toString())
      if (!match) throw errors.invalidCursor()
      return Number(match[1])
    }
  }
}
