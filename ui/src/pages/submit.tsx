// Submit a task from the page (POST /v1/video_generation): an image by upload or URL, a prompt, metadata.
import { useState } from 'preact/hooks'
import { api, ApiError } from '../api.js'
import { PROVIDERS } from '../format.js'
import { navigate } from '../router.js'

// MiniMax's limits, checked here so a person learns before the upload (the service checks again).
const MAX_IMAGE_BYTES = 20 * 1024 * 1024
const IMAGE_TYPES = ['image/jpeg', 'image/png', 'image/webp']

async function readDataUrl (file: File): Promise<string> {
  return await new Promise((resolve, reject) => {
    const reader = new FileReader()
    reader.onload = () => resolve(String(reader.result))
    reader.onerror = () => reject(reader.error ?? new Error('could not read the file'))
    reader.readAsDataURL(file)
  })
}

export function Submit () {
  const [source, setSource] = useState<'upload' | 'url'>('upload')
  const [preview, setPreview] = useState<string | null>(null)
  const [error, setError] = useState<string | null>(null)
  const [busy, setBusy] = useState(false)

  const onFile = async (event: Event) => {
    const file = (event.target as HTMLInputElement).files?.[0]
    setError(null)
    setPreview(null)
    if (!file) return
    if (!IMAGE_TYPES.includes(file.type)) return setError(`${file.type || 'This file'} is not a JPEG, PNG or WebP image.`)
    if (file.size >= MAX_IMAGE_BYTES) return setError(`The image is ${file.size} bytes; MiniMax accepts less than 20 MB.`)
    setPreview(await readDataUrl(file))
  }

  const onSubmit = async (event: Event) => {
    event.preventDefault()
    setError(null)
    const form = new FormData(event.target as HTMLFormElement)
    const image = source === 'upload' ? preview : String(form.get('image_url') ?? '').trim()
    if (!image) return setError(source === 'upload' ? 'Choose an image to upload.' : 'Give the image\'s URL.')
    let metadata: Record<string, unknown> | undefined
    const metadataText = String(form.get('metadata') ?? '').trim()
    if (metadataText) {
      try {
        metadata = JSON.parse(metadataText) as Record<string, unknown>
      } catch {
        return setError('Metadata must be a JSON object, e.g. {"ticket": "T-42"}.')
      }
      if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) return setError('Metadata must be a JSON object.')
    }
    const prompt = String(form.get('prompt') ?? '').trim()
    const notifyUrl = String(form.get('notify_url') ?? '').trim()
    const body: Record<string, unknown> = {
      model: 'S2V-01',
      subject_reference: [{ type: 'character', image: [image] }],
      prompt_optimizer: form.get('prompt_optimizer') === 'on',
      provider: String(form.get('provider') ?? 'minimax'),
      ...(prompt ? { prompt } : {}),
      ...(metadata ? { metadata } : {}),
      ...(notifyUrl ? { notify_url: notifyUrl } : {})
    }
    setBusy(true)
    try {
      // A fresh key per press: a double click or a retried request never pays for two generations.
      const answer = await api<{ id: string }>('/v1/video_generation', { method: 'POST', body, headers: { 'idempotency-key': `ui-${crypto.randomUUID()}` } })
      navigate(`tasks/${answer.id}`)
    } catch (err) {
      const id = err instanceof ApiError ? err.body.id : undefined
      setError(`${(err as Error).message}${err instanceof ApiError ? ` (${err.code})` : ''}`)
      if (typeof id === 'string') setError(`${(err as Error).message} — the task was recorded: #/tasks/${id}`)
    } finally {
      setBusy(false)
    }
  }

  return (
    <section>
      <h1>Submit a task</h1>
      <p class='muted'>Sends MiniMax's S2V-01 request through this service, as <code>POST /v1/video_generation</code> would.</p>
      <form class='card submit' onSubmit={onSubmit}>
        <fieldset>
          <legend>Subject reference image</legend>
          <div class='choice'>
            <label><input type='radio' name='source' value='upload' checked={source === 'upload'} onChange={() => setSource('upload')} /> Upload</label>
            <label><input type='radio' name='source' value='url' checked={source === 'url'} onChange={() => setSource('url')} /> URL</label>
          </div>
          {source === 'upload'
            ? (
              <div class='field'>
                <label for='image_file'>Image file (JPEG, PNG or WebP, under 20 MB)</label>
                <input id='image_file' name='image_file' type='file' accept={IMAGE_TYPES.join(',')} onChange={onFile} />
                {preview && <img class='preview' src={preview} alt='The chosen image' />}
              </div>
              )
            : (
              <div class='field'>
                <label for='image_url'>Image URL</label>
                <input id='image_url' name='image_url' type='url' placeholder='https://example.com/face.jpg' />
              </div>
              )}
        </fieldset>
        <div class='field'>
          <label for='prompt'>Prompt (up to 2000 characters)</label>
          <textarea id='prompt' name='prompt' rows={3} maxLength={2000} placeholder='A girl waves at the camera' />
        </div>
        <div class='field'>
          <label><input type='checkbox' name='prompt_optimizer' /> Let MiniMax optimise the prompt</label>
        </div>
        <div class='field'>
          <label for='provider'>Provider</label>
          <select id='provider' name='provider'>{PROVIDERS.map((p) => <option key={p} value={p}>{p}</option>)}</select>
        </div>
        <div class='field'>
          <label for='metadata'>Metadata (a JSON object, optional)</label>
          <textarea id='metadata' name='metadata' rows={2} placeholder='{"ticket": "T-42"}' />
        </div>
        <div class='field'>
          <label for='notify_url'>Notify URL (optional: a signed POST on every status change)</label>
          <input id='notify_url' name='notify_url' type='url' placeholder='https://hooks.example.com/s2v' />
        </div>
        {error && <p class='error' role='alert'>{error}</p>}
        <button type='submit' disabled={busy}>{busy ? 'Submitting…' : 'Submit'}</button>
      </form>
    </section>
  )
}
