// The hash router: #/tasks/<id>?status=… (the server serves one page; a reload keeps the place).

export type Route = { path: string[], query: URLSearchParams }

export function parseHash (): Route {
  const [path = '', query = ''] = location.hash.replace(/^#\/?/, '').split('?')
  return { path: path.split('/').filter(Boolean).map(decodeURIComponent), query: new URLSearchParams(query) }
}

export function navigate (path: string, query?: Record<string, string | undefined>): void {
  const params = new URLSearchParams(Object.entries(query ?? {}).filter((entry): entry is [string, string] => Boolean(entry[1])))
  const search = params.toString()
  location.hash = `#/${path}${search ? `?${search}` : ''}`
}
