// MiniMax's GET /v1/files/retrieve shape, and the query of this service's signed download links.
import { Type, type Static, type TSchema } from 'typebox'
import { SIGNATURE_PATTERN } from '../services/download-links.js'
import { BaseResp, ErrorResponse } from './common.js'

export const MiniMaxFileQuery = Type.Object({
  file_id: Type.String({ minLength: 1, maxLength: 100, description: 'MiniMax\'s file_id from the query answer (digits; our task id works too, e.g. for Modellix tasks)' })
})

export const MiniMaxFileAnswer = Type.Object({
  file: Type.Object({
    file_id: Type.String({ description: 'As asked for, as a string so every digit survives (MiniMax sends a number; ids exceed 2^53)' }),
    bytes: Type.Integer({ description: 'Size of our archived copy, else the provider\'s stated size once its link was fetched; 0 until either is known' }),
    created_at: Type.Integer({ description: 'Unix seconds: when the task succeeded' }),
    filename: Type.String({ description: '<task_id>.mp4' }),
    purpose: Type.Literal('video_generation'),
    download_url: Type.String({ description: 'A signed link of this service (no bearer header needed, expires after DOWNLOAD_LINK_TTL_S): our archived copy, or a redirect to a fresh provider link' })
  }),
  base_resp: BaseResp
}, {
  description: 'The video file of a task in MiniMax\'s files/retrieve shape',
  examples: [{
    file: {
      file_id: '268010811835735',
      bytes: 0,
      created_at: 1795249530,
      filename: '399760801914032555.mp4',
      purpose: 'video_generation',
      download_url: 'https://s2v.example.com/v1/files/download/64570eb2-57f9-4981-9f29-f0496a7692de?expires=1795256731&signature=3q2-7wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'
    },
    base_resp: { status_code: 0, status_msg: 'success' }
  }]
})
export type MiniMaxFileAnswer = Static<typeof MiniMaxFileAnswer>

/** A MiniMax-compatible lookup's 200: the answer, or a refusal in the error shape with a non-zero base_resp, as MiniMax does. */
export function OrMiniMaxRefusal<T extends TSchema> (answer: T, what: string) {
  return Type.Union([answer, ErrorResponse], {
    // The answer's example only: one example is shown as the response's example (the refusal is the shared error shape).
    examples: ((answer as { examples?: unknown[] }).examples ?? []).slice(0, 1),
    description: `${what}; or, with base_resp.status_code != 0, a refusal (1004 missing or wrong token, 2013 unknown id or invalid parameter, 1002 rate limited): MiniMax answers these with HTTP 200, so its clients read them`
  })
}

export const DownloadParams = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 100, description: 'Our task id' })
})

export const DownloadQuery = Type.Object({
  expires: Type.Integer({ minimum: 0, description: 'Unix seconds after which the link is refused' }),
  signature: Type.String({ pattern: SIGNATURE_PATTERN, description: 'base64url HMAC-SHA256 over the task, the expiry and the purpose' })
}, { additionalProperties: false })
