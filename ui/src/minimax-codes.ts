// What MiniMax's error codes (and our own) mean, for a person reading a failed task. From MiniMax's documentation.

const MEANINGS: Record<string, { meaning: string, retry: string }> = {
  1000: { meaning: 'Unknown error at MiniMax', retry: 'Retry later' },
  1001: { meaning: 'Request timed out at MiniMax', retry: 'Retry later' },
  1002: { meaning: 'Rate limit: too many requests per minute', retry: 'Retry later, with backoff' },
  1004: { meaning: 'Authentication failed: our MiniMax key was refused', retry: 'No: the operator must check MINIMAX_API_KEY' },
  1008: { meaning: 'Insufficient balance on the MiniMax account', retry: 'No: top up the account' },
  1013: { meaning: 'Internal error at MiniMax', retry: 'Retry later' },
  1024: { meaning: 'Internal error at MiniMax', retry: 'Retry later' },
  1026: { meaning: 'Sensitive content detected in the input (prompt or image)', retry: 'No: change the input' },
  1027: { meaning: 'Sensitive content detected in the generated video', retry: 'No: change the prompt or image' },
  1033: { meaning: 'Internal error at MiniMax', retry: 'Retry later' },
  1039: { meaning: 'Token-per-minute limit', retry: 'Retry later' },
  1041: { meaning: 'Connection limit', retry: 'Retry later' },
  1042: { meaning: 'Invisible characters in the input', retry: 'No: clean the prompt' },
  2013: { meaning: 'Invalid parameters (or MiniMax could not check our callback URL)', retry: 'No: fix the request' },
  2045: { meaning: 'The request rate rose too suddenly', retry: 'Later: ramp up smoothly' },
  2049: { meaning: 'Invalid API key, or the wrong region\'s host', retry: 'No: the operator must check the key and MINIMAX_BASE_URL' },
  2056: { meaning: 'Usage limit exceeded; clears in the next 5-hour window', retry: 'Later, in hours' },
  submit_outcome_unknown: { meaning: 'The create call\'s outcome is unknown (timeout, reset or 5xx): the task may exist at the provider', retry: 'Look the task up before resubmitting' },
  provider_unreachable: { meaning: 'The provider could not be reached; nothing was created', retry: 'Retry' },
  timeout: { meaning: 'The task did not finish within TASK_DEADLINE_MS', retry: 'Resubmit' },
  cancelled: { meaning: 'Cancelled before it was sent to the provider', retry: 'Resubmit if still wanted' }
}

export function explain (code: string): { meaning: string, retry: string } | undefined {
  return MEANINGS[code]
}
