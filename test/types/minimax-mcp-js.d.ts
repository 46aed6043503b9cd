// The parts of MiniMax's official JavaScript client (minimax-mcp-js ships no types) that the drop-in test drives.
declare module 'minimax-mcp-js/build/utils/api.js' {
  export class MiniMaxAPI {
    constructor (config: { apiKey: string, apiHost: string, resourceMode?: 'url' | 'local' | 'base64' })
  }
}

declare module 'minimax-mcp-js/build/api/video.js' {
  import type { MiniMaxAPI } from 'minimax-mcp-js/build/utils/api.js'
  export class VideoAPI {
    constructor (api: MiniMaxAPI)
    queryVideoGeneration (request: { taskId: string, outputDirectory?: string }): Promise<{ status: string, video_url?: string, video_path?: string, task_id?: string }>
  }
}

declare module 'minimax-mcp-js/build/exceptions/index.js' {
  export class MinimaxError extends Error {}
  export class MinimaxAuthError extends MinimaxError {}
  export class MinimaxRequestError extends MinimaxError {}
}
