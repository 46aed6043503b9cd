// The one small interface every video provider client implements, so a new provider is one file.

export type ProviderName = 'minimax' | 'modellix'

export type SubmitRequest = {
  model: string
  prompt?: string | undefined
  prompt_optimizer?: boolean | undefined
  /** One reference image: an http(s) URL or a data URL. */
  image: string
}

/** Where the finished video can be downloaded, and until when. */
export type VideoLink = {
  url: string
  /** ISO time after which the URL no longer works. */
  expiresAt: string
  width: number | null
  height: number | null
  /** The file's size, when the provider states it (MiniMax's files/retrieve does). */
  bytes?: number | null
}

/** A task as the provider describes it now (the answer to a poll). */
export type ProviderTaskState = {
  /** As the provider spelt it; normalised by the domain (services/task-state.ts). */
  providerStatus: string
  fileId: string | null
  /** Why the task failed, when the provider says so. */
  error: { code: string, message: string } | null
  /** Providers that hand out the video with the status (Modellix) fill this in. */
  video: VideoLink | null
  traceId: string | null
}

/** Reported for every HTTP call a client makes, for metrics. */
export type ProviderCall = {
  provider: ProviderName
  operation: 'create' | 'query' | 'retrieve' | 'download'
  ms: number
  ok: boolean
  traceId: string | null
}

export interface VideoProvider {
  readonly name: ProviderName
  /** True when the provider pushes status changes to a callback URL; otherwise polling is the only way. */
  readonly pushesStatus: boolean
  /** Creates a task. Throws ProviderError; never retries (a create costs money and has no idempotency key). */
  submit (request: SubmitRequest, callbackUrl: string | null): Promise<{ taskId: string, traceId: string | null }>
  /** Asks for the task's current state. Throws ProviderError when the question itself fails. */
  query (taskId: string): Promise<ProviderTaskState>
  /** A fresh download link for a finished task's video. */
  videoLink (taskId: string, fileId: string | null): Promise<VideoLink>
}
